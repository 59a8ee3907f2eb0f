package imagewrite

import (
	"bytes"
	"context"
	"testing"
)

// checkZeroed checks that exactly [off, off+n) of the disk is zero and
// the rest still holds pattern.
func checkZeroed(t *testing.T, path string, off, n int64, pattern byte) {
	t.Helper()
	got := readDisk(t, path)
	for i, c := range got {
		want := pattern
		if int64(i) >= off && int64(i) < off+n {
			want = 0
		}
		if c != want {
			t.Fatalf("byte %d is %#x, want %#x (zeroed %d+%d)", i, c, want, off, n)
		}
	}
}

func TestDeviceZero(t *testing.T) {
	const off, n = 1000, 3<<20 + 7 // unaligned at both ends
	zeroers := map[string]func(*device) error{
		"kernel":        func(d *device) error { return d.zero(context.Background(), off, n) },
		"written zeros": func(d *device) error { return d.writeZeros(context.Background(), off, n) },
	}
	disks := map[string]func(*testing.T) string{
		"file":         func(t *testing.T) string { return newDisk(t, 8<<20, 0x5a) },
		"block device": func(t *testing.T) string { return loopDevice(t, 8<<20, 0x5a) },
	}
	for dname, disk := range disks {
		for zname, zero := range zeroers {
			t.Run(dname+", "+zname, func(t *testing.T) {
				path := disk(t)
				d, err := openDevice(path)
				if err != nil {
					t.Fatal(err)
				}
				if d.size != 8<<20 {
					t.Errorf("size = %d, want %d", d.size, 8<<20)
				}
				if err := zero(d); err != nil {
					t.Fatal(err)
				}
				if err := d.sync(); err != nil {
					t.Fatal(err)
				}
				d.Close()
				checkZeroed(t, path, off, n, 0x5a)
			})
		}
	}
	t.Run("written zeros stop when cancelled", func(t *testing.T) {
		path := newDisk(t, 8<<20, 0x5a)
		d, err := openDevice(path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := d.writeZeros(ctx, 0, 4<<20); err == nil {
			t.Fatal("zeroing went on after cancellation")
		}
		if got := readDisk(t, path); !bytes.Equal(got, bytes.Repeat([]byte{0x5a}, len(got))) {
			t.Error("zeros were written after cancellation")
		}
	})
}
