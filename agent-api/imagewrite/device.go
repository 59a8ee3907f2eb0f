package imagewrite

import (
	"context"
	"fmt"
	"os"
)

// device is the disk written: a block device or a regular file standing in
// for one (whose size is the disk's).
type device struct {
	f       *os.File
	path    string
	size    int64
	isBlock bool
	zeros   []byte // written where the kernel cannot zero a range itself
}

const zeroChunk = 1 << 20

func openDevice(path string) (*device, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDevice, err)
	}
	d := &device{path: path}
	switch mode := st.Mode(); {
	case mode.IsRegular():
		d.f, err = os.OpenFile(path, os.O_RDWR, 0)
		d.size = st.Size()
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		d.isBlock = true
		if d.f, err = openBlockDevice(path); err == nil {
			d.size, err = blockDeviceSize(d.f)
		}
	default:
		return nil, fmt.Errorf("%w: %s is neither a block device nor a regular file", ErrDevice, path)
	}
	if err != nil {
		if d.f != nil {
			d.f.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrDevice, err)
	}
	if d.size <= 0 {
		d.f.Close()
		return nil, fmt.Errorf("%w: %s has no size", ErrDevice, path)
	}
	return d, nil
}

func (d *device) writeAt(p []byte, off int64) error {
	if _, err := d.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("%w: %w", ErrDevice, err)
	}
	return nil
}

// zero makes [off, off+n) read as zeros, as cheaply as the disk allows.
func (d *device) zero(ctx context.Context, off, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := d.zeroFast(off, n); err == nil {
		return nil
	}
	return d.writeZeros(ctx, off, n)
}

func (d *device) writeZeros(ctx context.Context, off, n int64) error {
	if d.zeros == nil {
		d.zeros = make([]byte, zeroChunk)
	}
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := min(n, zeroChunk)
		if err := d.writeAt(d.zeros[:c], off); err != nil {
			return err
		}
		off += c
		n -= c
	}
	return nil
}

func (d *device) sync() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrDevice, d.path, err)
	}
	return nil
}

func (d *device) Close() error { return d.f.Close() }
