package imagewrite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// zstdOf compresses in one shot, so the frame declares its content size.
func zstdOf(t *testing.T, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// bzip2Of uses the bzip2 program: the standard library only decompresses.
func bzip2Of(t *testing.T, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("bzip2 is missing (apt-get install bzip2)")
	}
	cmd := exec.Command("bzip2", "-1", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteStreamedFormats(t *testing.T) {
	image := testImage(9<<20+512, 1)
	cases := []struct {
		name   string
		encode func(*testing.T, []byte) []byte
		format Format
	}{
		{"raw", func(_ *testing.T, b []byte) []byte { return b }, FormatRaw},
		{"gzip", gzipOf, FormatGzip},
		{"zstd", zstdOf, FormatZstd},
		{"bzip2", bzip2Of, FormatBzip2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.encode(t, image)
			s := newImageServer(t, false)
			url := s.add("image."+tc.name, file)
			disk := newDisk(t, 16<<20, 0x5a)
			var progress []int64
			opts := testOptions(s)
			opts.Progress = func(n int64) { progress = append(progress, n) }

			res, err := Write(context.Background(), Source{URL: url, Checksum: "sha256:" + sha256Hex(file), DiskFormat: "raw"}, disk, opts)
			if err != nil {
				t.Fatal(err)
			}
			wantDisk(t, disk, image, 0x5a)
			if res.Format != tc.format || res.BytesWritten != int64(len(image)) || res.BytesDownloaded != int64(len(file)) ||
				res.DigestAlgo != "sha256" || res.Digest != sha256Hex(file) {
				t.Errorf("result = %+v", res)
			}
			if len(progress) == 0 || progress[len(progress)-1] != int64(len(image)) {
				t.Errorf("progress ended at %v, want %d", progress, len(image))
			}
			checkNoLeak(t)
		})
	}
}

func TestFormatFollowsContentNotDiskFormat(t *testing.T) {
	image := testImage(3<<20, 2)
	for _, hint := range []string{"qcow2", "vmdk", ""} {
		t.Run("raw content, disk_format "+hint, func(t *testing.T) {
			s := newImageServer(t, false)
			url := s.add("image", image)
			disk := newDisk(t, 4<<20, 0)
			res, err := Write(context.Background(), Source{URL: url, Checksum: md5Hex(image), DiskFormat: hint}, disk, testOptions(s))
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != FormatRaw || res.DigestAlgo != "md5" {
				t.Errorf("result = %+v", res)
			}
			wantDisk(t, disk, image, 0)
		})
	}
	t.Run("zstd content, disk_format qcow2", func(t *testing.T) {
		file := zstdOf(t, image)
		s := newImageServer(t, false)
		url := s.add("image", file)
		disk := newDisk(t, 4<<20, 0)
		res, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file), DiskFormat: "qcow2"}, disk, testOptions(s))
		if err != nil {
			t.Fatal(err)
		}
		if res.Format != FormatZstd {
			t.Errorf("format = %s, want zstd", res.Format)
		}
		wantDisk(t, disk, image, 0)
	})
}

func TestImageLargerThanDisk(t *testing.T) {
	image := testImage(5<<20, 3)
	t.Run("raw with Content-Length", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("big.raw", image)
		disk := newDisk(t, 4<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, disk, testOptions(s))
		if !errors.Is(err, ErrImageTooLarge) {
			t.Fatalf("err = %v, want ErrImageTooLarge", err)
		}
		wantDisk(t, disk, nil, 0x5a) // untouched
	})
	t.Run("zstd declaring its size", func(t *testing.T) {
		file := zstdOf(t, image)
		var h zstd.Header
		if err := h.Decode(file); err != nil || !h.HasFCS {
			t.Fatalf("the test image's frame declares no size (%v)", err)
		}
		s := newImageServer(t, false)
		url := s.add("big.zst", file)
		disk := newDisk(t, 4<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, disk, testOptions(s))
		if !errors.Is(err, ErrImageTooLarge) {
			t.Fatalf("err = %v, want ErrImageTooLarge", err)
		}
		wantDisk(t, disk, nil, 0x5a)
	})
	t.Run("gzip found too large while streaming", func(t *testing.T) {
		file := gzipOf(t, image)
		s := newImageServer(t, false)
		url := s.add("big.gz", file)
		disk := newDisk(t, 4<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, disk, testOptions(s))
		if !errors.Is(err, ErrImageTooLarge) {
			t.Fatalf("err = %v, want ErrImageTooLarge", err)
		}
		wantZeros(t, disk, disarmSize) // the partial image cannot boot
		checkNoLeak(t)
	})
}

func TestRefusedImages(t *testing.T) {
	iso := make([]byte, 64<<10)
	copy(iso[isoMagicOffset:], "CD001")
	vmdk := append([]byte("KDMV"), make([]byte, 4096)...)
	cases := []struct {
		name  string
		file  func(*testing.T) []byte
		hint  string
		match error
	}{
		{"empty", func(*testing.T) []byte { return nil }, "raw", ErrUnsupportedImage},
		{"xz", func(*testing.T) []byte { return append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 100)...) }, "raw", ErrUnsupportedImage},
		{"vmdk", func(*testing.T) []byte { return vmdk }, "vmdk", ErrUnsupportedImage},
		{"iso as iso", func(*testing.T) []byte { return iso }, "iso", ErrUnsupportedImage},
		{"gzip of vmdk", func(t *testing.T) []byte { return gzipOf(t, vmdk) }, "raw", ErrUnsupportedImage},
		{"gzip of qcow2", func(t *testing.T) []byte {
			return gzipOf(t, append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 200)...))
		}, "qcow2", ErrUnsupportedImage},
		{"corrupt gzip", func(*testing.T) []byte {
			return append([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{0xff}, 1000)...)
		}, "raw", ErrUnsupportedImage},
		{"qcow version 1", func(*testing.T) []byte { return append([]byte("QFI\xfb\x00\x00\x00\x01"), make([]byte, 200)...) }, "qcow2", ErrUnsupportedImage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file(t)
			s := newImageServer(t, false)
			url := s.add("image", file)
			disk := newDisk(t, 1<<20, 0x5a)
			_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file), DiskFormat: tc.hint}, disk, testOptions(s))
			if !errors.Is(err, tc.match) {
				t.Fatalf("err = %v, want %v", err, tc.match)
			}
			wantDisk(t, disk, nil, 0x5a)
		})
	}
	t.Run("iso as raw is written", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image.iso", iso)
		disk := newDisk(t, 1<<20, 0x5a)
		if _, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(iso), DiskFormat: "raw"}, disk, testOptions(s)); err != nil {
			t.Fatal(err)
		}
		wantDisk(t, disk, iso, 0x5a)
	})
	t.Run("not http", func(t *testing.T) {
		disk := newDisk(t, 1<<20, 0)
		for _, u := range []string{"file:///etc/passwd", "ftp://host/image", "/image", "http://"} {
			if _, err := Write(context.Background(), Source{URL: u, Checksum: md5Hex(nil)}, disk, Options{}); !errors.Is(err, ErrUnsupportedImage) {
				t.Errorf("%s: err = %v, want ErrUnsupportedImage", u, err)
			}
		}
	})
}

// A zstd frame asking for a window far beyond the bound is refused
// without the memory being taken.
func TestZstdWindowBounded(t *testing.T) {
	// Frame header: magic, descriptor with no single segment and no
	// content size, window descriptor exponent 21 (2 GiB), then a block.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x01, 0x00, 0x00}
	s := newImageServer(t, false)
	url := s.add("hostile.zst", frame)
	disk := newDisk(t, 1<<20, 0x5a)
	_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(frame)}, disk, testOptions(s))
	if !errors.Is(err, ErrUnsupportedImage) {
		t.Fatalf("err = %v, want ErrUnsupportedImage", err)
	}
	wantDisk(t, disk, nil, 0x5a)
}

func TestDeviceErrors(t *testing.T) {
	image := testImage(1<<20, 4)
	s := newImageServer(t, false)
	url := s.add("image", image)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{filepath.Join(dir, "missing"), dir, empty, "/dev/null"} {
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, dev, testOptions(s))
		if !errors.Is(err, ErrDevice) {
			t.Errorf("%s: err = %v, want ErrDevice", dev, err)
		}
	}
	if n := len(s.requestsFor("image")); n != 0 {
		t.Errorf("the image was requested %d times for a bad disk", n)
	}
}
