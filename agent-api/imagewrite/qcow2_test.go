package imagewrite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// qcowImage is a raw image whose size is not a multiple of the cluster
// size, with zero stretches qemu-img leaves unallocated.
func qcowImage() []byte { return testImage(10<<20+3*512, 30) }

func TestWriteQcow2(t *testing.T) {
	image := qcowImage()
	cases := []struct {
		name string
		opts []string
	}{
		{"plain", nil},
		{"compressed zlib", []string{"-c"}},
		{"compressed zstd", []string{"-c", "-o", "compression_type=zstd"}},
		{"4 KiB clusters", []string{"-o", "cluster_size=4096"}},
		{"version 2", []string{"-o", "compat=0.10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := qcow2Of(t, image, tc.opts...)
			s := newImageServer(t, false)
			url := s.add("image.qcow2", file)
			// The disk's old content must not survive where the image
			// has holes.
			disk := newDisk(t, 16<<20, 0x5a)
			var written int64
			opts := testOptions(s)
			opts.Progress = func(n int64) { written = n }
			res, err := Write(context.Background(), Source{URL: url, OSHashAlgo: "sha512", OSHashValue: sha512Hex(file), DiskFormat: "qcow2"}, disk, opts)
			if err != nil {
				t.Fatal(err)
			}
			wantDisk(t, disk, image, 0x5a)
			if res.Format != FormatQcow2 || res.BytesWritten != int64(len(image)) || written != int64(len(image)) ||
				res.Digest != sha512Hex(file) || res.BytesDownloaded <= int64(len(file)) {
				t.Errorf("result = %+v (file %d bytes)", res, len(file))
			}
			checkNoLeak(t)
		})
	}
}

func TestQcow2DetectedThoughDiskFormatSaysRaw(t *testing.T) {
	image := qcowImage()
	file := qcow2Of(t, image)
	s := newImageServer(t, false)
	url := s.add("image", file)
	disk := newDisk(t, 12<<20, 0x5a)
	res, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file), DiskFormat: "raw"}, disk, testOptions(s))
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatQcow2 {
		t.Errorf("format = %s, want qcow2", res.Format)
	}
	wantDisk(t, disk, image, 0x5a)
}

// patched returns a copy of b with a big-endian value written at off.
func patched(b []byte, off int, value any) []byte {
	c := bytes.Clone(b)
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.BigEndian, value); err != nil {
		panic(err)
	}
	copy(c[off:], buf.Bytes())
	return c
}

func TestQcow2Refused(t *testing.T) {
	image := qcowImage()
	plain := qcow2Of(t, image)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, image, 0o600); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-b", base, "-F", "raw", overlay)
	extL2 := filepath.Join(dir, "extl2.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-o", "extended_l2=on", extL2, "10M")
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name  string
		file  []byte
		match error
		says  string
	}{
		{"backing file", read(overlay), ErrUnsupportedImage, "backing file"},
		{"extended L2", read(extL2), ErrUnsupportedImage, "extended L2"},
		{"encrypted", patched(plain, 32, uint32(2)), ErrUnsupportedImage, "encrypted"},
		{"external data file", patched(plain, 72, uint64(qcowExternalData)), ErrUnsupportedImage, "external data"},
		{"corrupt bit", patched(plain, 72, uint64(qcowCorrupt)), ErrUnsupportedImage, "corrupt"},
		{"unknown feature", patched(plain, 72, uint64(1<<20)), ErrUnsupportedImage, "unknown incompatible"},
		{"huge L1 table", patched(plain, 36, uint32(1<<30)), ErrUnsupportedImage, "L1 table"},
		{"L1 table outside the file", patched(plain, 40, uint64(1<<40)), ErrUnsupportedImage, "L1 table"},
		{"cluster bits", patched(plain, 20, uint32(30)), ErrUnsupportedImage, "cluster_bits"},
		{"larger than the disk", patched(plain, 24, uint64(1<<40)), ErrImageTooLarge, "virtual size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newImageServer(t, false)
			url := s.add("image.qcow2", tc.file)
			disk := newDisk(t, 12<<20, 0x5a)
			_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(tc.file)}, disk, testOptions(s))
			if !errors.Is(err, tc.match) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.match, tc.says)
			}
			wantDisk(t, disk, nil, 0x5a)
			if n := len(s.requestsFor("image.qcow2")); n != 1 {
				t.Errorf("%d requests; the header alone should refuse it", n)
			}
			checkNoLeak(t)
		})
	}
}

func TestQcow2NeedsRangeRequests(t *testing.T) {
	file := qcow2Of(t, qcowImage())
	s := newImageServer(t, false)
	url := s.add("image.qcow2", file)
	s.change("image.qcow2", func(f *testFile) { f.noRanges = true })
	disk := newDisk(t, 12<<20, 0x5a)
	_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, disk, testOptions(s))
	if !errors.Is(err, ErrRangesUnsupported) {
		t.Fatalf("err = %v, want ErrRangesUnsupported", err)
	}
	wantDisk(t, disk, nil, 0x5a)
	checkNoLeak(t)
}

func TestQcow2ChecksumMismatchWritesNothing(t *testing.T) {
	file := qcow2Of(t, qcowImage())
	s := newImageServer(t, false)
	url := s.add("image.qcow2", file)
	disk := newDisk(t, 12<<20, 0x5a)
	_, err := Write(context.Background(), Source{URL: url, Checksum: "sha256:" + sha256Hex(nil)}, disk, testOptions(s))
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
	wantDisk(t, disk, nil, 0x5a) // verified before anything was written
	if n := len(s.requestsFor("image.qcow2")); n != 1 {
		t.Errorf("%d requests; a mismatch must stop before the conversion", n)
	}
}

// The conversion reads only bytes that were verified, even from a server
// that changes the file and keeps its ETag.
func TestQcow2ChangedAfterVerification(t *testing.T) {
	image := qcowImage()
	file := qcow2Of(t, image)
	changed := bytes.Clone(file)
	changed[len(changed)-100] ^= 0xff // in the last data cluster

	t.Run("same ETag", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image.qcow2", file)
		s.change("image.qcow2", func(f *testFile) { f.swapTo = changed })
		disk := newDisk(t, 12<<20, 0x5a)
		var written int64
		opts := testOptions(s)
		opts.Progress = func(n int64) { written = n }
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, disk, opts)
		if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "after they were verified") {
			t.Fatalf("err = %v, want ErrChecksumMismatch for bytes changed after verification", err)
		}
		if written == 0 {
			t.Fatal("nothing was written before the changed block: the test proves nothing")
		}
		wantZeros(t, disk, int(written))
		wantDisk(t, disk, make([]byte, written), 0x5a) // and nothing past what was written
		checkNoLeak(t)
	})
	t.Run("new ETag", func(t *testing.T) {
		s := newImageServer(t, false)
		url := s.add("image.qcow2", file)
		verified := s.etag("image.qcow2")
		s.change("image.qcow2", func(f *testFile) { f.swapTo, f.swapETag = changed, `"v2"` })
		disk := newDisk(t, 12<<20, 0x5a)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, disk, testOptions(s))
		var de *DownloadError
		if !errors.As(err, &de) || de.StatusCode != 412 {
			t.Fatalf("err = %v, want a DownloadError with status 412", err)
		}
		for _, r := range s.requestsFor("image.qcow2")[1:] {
			if r.Header.Get("If-Match") != verified {
				t.Errorf("range request with If-Match %q", r.Header.Get("If-Match"))
			}
		}
		wantDisk(t, disk, nil, 0x5a) // block 0 already failed: nothing written
	})
}

func TestQcow2RangeRequestRetried(t *testing.T) {
	image := qcowImage()
	file := qcow2Of(t, image)
	s := newImageServer(t, false)
	url := s.add("image.qcow2", file)
	s.setFault(&fault{kind: "cut", after: 1 << 20, times: 2, ranges: true})
	disk := newDisk(t, 12<<20, 0x5a)
	if _, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, disk, testOptions(s)); err != nil {
		t.Fatal(err)
	}
	wantDisk(t, disk, image, 0x5a)
	checkNoLeak(t)
}

// loopDevice attaches a file of size bytes filled with pattern to a loop
// device, for the block device paths (BLKGETSIZE64, BLKZEROOUT, BLKRRPART,
// an exclusive open). It skips where loop devices cannot be set up.
func loopDevice(t *testing.T, size int64, pattern byte) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup is missing (Debian package mount)")
	}
	backing := newDisk(t, size, pattern)
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func TestBlockDevice(t *testing.T) {
	image := qcowImage()
	t.Run("qcow2 holes zeroed", func(t *testing.T) {
		file := qcow2Of(t, image, "-c")
		dev := loopDevice(t, 16<<20, 0x5a)
		s := newImageServer(t, false)
		url := s.add("image.qcow2", file)
		res, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(file)}, dev, testOptions(s))
		if err != nil {
			t.Fatal(err)
		}
		if res.BytesWritten != int64(len(image)) {
			t.Errorf("wrote %d bytes, want %d", res.BytesWritten, len(image))
		}
		wantDisk(t, dev, image, 0x5a)
	})
	t.Run("mismatch wiped", func(t *testing.T) {
		dev := loopDevice(t, 16<<20, 0x5a)
		s := newImageServer(t, false)
		url := s.add("image.raw", image)
		_, err := Write(context.Background(), Source{URL: url, Checksum: sha256Hex(nil)}, dev, testOptions(s))
		if !errors.Is(err, ErrChecksumMismatch) {
			t.Fatalf("err = %v, want ErrChecksumMismatch", err)
		}
		wantDisk(t, dev, make([]byte, len(image)), 0x5a)
	})
	t.Run("in use", func(t *testing.T) {
		dev := loopDevice(t, 16<<20, 0)
		holder, err := os.OpenFile(dev, os.O_RDONLY|syscall.O_EXCL, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		s := newImageServer(t, false)
		url := s.add("image.raw", image)
		_, err = Write(context.Background(), Source{URL: url, Checksum: sha256Hex(image)}, dev, testOptions(s))
		if !errors.Is(err, ErrDevice) || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("err = %v, want ErrDevice saying the disk is in use", err)
		}
	})
}
