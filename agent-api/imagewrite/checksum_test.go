package imagewrite

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestChecksumForms(t *testing.T) {
	image := testImage(2<<20, 10)
	sha384 := sha512.Sum384(image)
	wrong := strings.Repeat("0", 64)
	s := newImageServer(t, false)
	imageURL := s.add("images/disk-1.2.raw", image)
	s.add("sums/SHA256SUMS", []byte(fmt.Sprintf("# comment\n%s  other.raw\n%s *disk-1.2.raw\n%s  disk-1.2.raw.gz\n",
		wrong, sha256Hex(image), wrong)))
	s.add("sums/CHECKSUM", []byte(fmt.Sprintf("SHA512 (other.raw) = %s\r\nSHA512 (disk-1.2.raw) = %s\r\n", sha512Hex(nil), sha512Hex(image))))
	s.add("sums/single", []byte(strings.ToUpper(md5Hex(image))+"\n"))
	s.add("sums/sha512-for-os-hash", []byte(sha512Hex(image)+"  disk-1.2.raw\n"))

	cases := []struct {
		name string
		src  Source
		algo string
	}{
		{"bare md5", Source{Checksum: md5Hex(image)}, "md5"},
		{"bare sha256", Source{Checksum: sha256Hex(image)}, "sha256"},
		{"bare sha512, upper case", Source{Checksum: strings.ToUpper(sha512Hex(image))}, "sha512"},
		{"sha256:", Source{Checksum: "sha256:" + sha256Hex(image)}, "sha256"},
		{"SHA512:", Source{Checksum: "SHA512:" + sha512Hex(image)}, "sha512"},
		{"sha384:", Source{Checksum: "sha384:" + hex.EncodeToString(sha384[:])}, "sha384"},
		{"os_hash takes precedence", Source{Checksum: wrong, OSHashAlgo: "sha512", OSHashValue: sha512Hex(image)}, "sha512"},
		{"unsupported os_hash falls back", Source{Checksum: sha256Hex(image), OSHashAlgo: "whirlpool", OSHashValue: "ab"}, "sha256"},
		{"checksums file, GNU lines", Source{Checksum: s.url("sums/SHA256SUMS")}, "sha256"},
		{"checksums file, BSD lines", Source{Checksum: s.url("sums/CHECKSUM")}, "sha512"},
		{"checksums file, a single hash", Source{Checksum: s.url("sums/single")}, "md5"},
		{"os_hash_value as a checksums file", Source{OSHashAlgo: "sha512", OSHashValue: s.url("sums/sha512-for-os-hash")}, "sha512"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			src.URL = imageURL
			disk := newDisk(t, 4<<20, 0)
			res, err := Write(context.Background(), src, disk, testOptions(s))
			if err != nil {
				t.Fatal(err)
			}
			if res.DigestAlgo != tc.algo {
				t.Errorf("algorithm = %s, want %s", res.DigestAlgo, tc.algo)
			}
			wantDisk(t, disk, image, 0)
		})
	}
}

func TestChecksumMismatchWipes(t *testing.T) {
	image := testImage(11<<20, 11)
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"raw", image},
		{"gzip", gzipOf(t, image)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newImageServer(t, false)
			url := s.add("image", tc.file)
			disk := newDisk(t, 16<<20, 0x5a)
			var written int64
			opts := testOptions(s)
			opts.Progress = func(n int64) { written = n }
			_, err := Write(context.Background(), Source{URL: url, Checksum: "sha256:" + sha256Hex(append(tc.file[:len(tc.file):len(tc.file)], 0))}, disk, opts)
			if !errors.Is(err, ErrChecksumMismatch) {
				t.Fatalf("err = %v, want ErrChecksumMismatch", err)
			}
			if written != int64(len(image)) {
				t.Fatalf("%d bytes were written before the mismatch, want the whole image (%d)", written, len(image))
			}
			wantZeros(t, disk, len(image))
			got := readDisk(t, disk)
			for i, c := range got[len(image):] {
				if c != 0x5a {
					t.Fatalf("byte %d past the image is %#x: the wipe went beyond what was written", len(image)+i, c)
				}
			}
			if !strings.Contains(err.Error(), sha256Hex(tc.file)) {
				t.Errorf("the error does not tell the digest found: %v", err)
			}
		})
	}
}

func TestMalformedChecksumRefusedBeforeWriting(t *testing.T) {
	image := testImage(1<<20, 12)
	s := newImageServer(t, false)
	imageURL := s.add("disk.raw", image)
	s.add("sums/other", []byte(sha256Hex(image)+"  other.raw\n"+sha256Hex(image)+"  disk.raw.gz\n"))
	s.add("sums/garbage", []byte("not a checksum\n"))
	cases := []struct {
		name  string
		src   Source
		match error
	}{
		{"none", Source{}, ErrInvalidChecksum},
		{"not hex", Source{Checksum: "sha256:" + strings.Repeat("z", 64)}, ErrInvalidChecksum},
		{"md5 too short", Source{Checksum: "md5:abcd"}, ErrInvalidChecksum},
		{"bare sha1 length", Source{Checksum: strings.Repeat("a", 40)}, ErrInvalidChecksum},
		{"empty after algo", Source{Checksum: "sha256:"}, ErrInvalidChecksum},
		{"unknown algo", Source{Checksum: "crc32:abcd1234"}, ErrInvalidChecksum},
		{"algo without value", Source{OSHashAlgo: "sha512"}, ErrInvalidChecksum},
		{"value without algo", Source{OSHashValue: sha512Hex(image)}, ErrInvalidChecksum},
		{"unsupported algo alone", Source{OSHashAlgo: "whirlpool", OSHashValue: "abcd"}, ErrInvalidChecksum},
		{"os_hash of the wrong length", Source{OSHashAlgo: "sha512", OSHashValue: sha256Hex(image)}, ErrInvalidChecksum},
		{"checksums file without the image", Source{Checksum: s.url("sums/other")}, ErrInvalidChecksum},
		{"checksums file of garbage", Source{Checksum: s.url("sums/garbage")}, ErrInvalidChecksum},
		{"checksums file missing", Source{Checksum: s.url("sums/missing")}, ErrDownload},
		{"checksums URL not http", Source{OSHashAlgo: "sha256", OSHashValue: "https://"}, ErrInvalidChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			src.URL = imageURL
			disk := newDisk(t, 2<<20, 0x5a)
			_, err := Write(context.Background(), src, disk, testOptions(s))
			if !errors.Is(err, tc.match) {
				t.Fatalf("err = %v, want %v", err, tc.match)
			}
			wantDisk(t, disk, nil, 0x5a)
		})
	}
	if n := len(s.requestsFor("disk.raw")); n != 0 {
		t.Errorf("the image was requested %d times though every checksum was refused", n)
	}
}

func TestParseChecksumsFile(t *testing.T) {
	h64 := strings.Repeat("ab", 32)
	h32 := strings.Repeat("cd", 16)
	img, _ := url.Parse("https://mirror/pub/images/My%20Image-1.0.qcow2?x=1")
	cases := []struct {
		name, text, want string
	}{
		{"gnu text mode", h64 + "  My Image-1.0.qcow2\n", h64},
		{"gnu binary mode", h64 + " *My%20Image-1.0.qcow2\n", h64},
		{"bsd", "SHA256 (My Image-1.0.qcow2) = " + h64, h64},
		{"first line of the name wins", h32 + "  My Image-1.0.qcow2\n" + h64 + "  My Image-1.0.qcow2\n", h32},
		{"comments and other files skipped", "# " + h64 + "  My Image-1.0.qcow2\n" + h32 + "  Other.qcow2\n" + h64 + "\tMy Image-1.0.qcow2", h64},
		{"a suffix of the name is not the name", h64 + "  Not My Image-1.0.qcow2.sig\n" + h32 + "  xMy Image-1.0.qcow2\n", ""},
		{"single hash", "  " + h32 + "  \n", h32},
		{"single word not a hash", "hello\n", ""},
		{"empty", "\n\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseChecksumsFile(tc.text, img)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
