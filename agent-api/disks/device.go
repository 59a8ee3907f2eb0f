package disks

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// device is an open disk whose reads and writes are checked against its
// size, so that nothing read from a partition table can direct a write
// outside the disk (or grow the file standing in for one).
type device struct {
	f          *os.File
	label      string // how messages name the disk
	size       int64
	sectorSize int64 // logical sector size: the kernel's, or 512 for a file
	block      bool
	// slowZero disables BLKZEROOUT and hole punching (tests use it to
	// cover the fallback).
	slowZero bool
}

// describe names a disk for messages: its kernel name, with the file that
// stands in for it under simulation.
func (d Disk) describe() string {
	switch {
	case d.Name == "":
		return d.Path
	case d.Path == "" || d.Path == d.Name:
		return d.Name
	}
	return d.Name + " (" + d.Path + ")"
}

func (d Disk) openPath() string {
	if d.Path != "" {
		return d.Path
	}
	return d.Name
}

// openDevice opens the disk. Block devices are measured with ioctls,
// regular files by their size; anything else is refused.
func openDevice(d Disk, writable bool) (*device, error) {
	path := d.openPath()
	if path == "" {
		return nil, errors.New("the disk has neither a name nor a path")
	}
	flag := os.O_RDONLY
	if writable {
		if d.ReadOnly {
			return nil, fmt.Errorf("disk %s is read-only", d.describe())
		}
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("opening disk %s: %w", d.describe(), err)
	}
	dev := &device{f: f, label: d.describe(), sectorSize: 512}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("examining disk %s: %w", dev.label, err)
	}
	switch mode := info.Mode(); {
	case mode.IsRegular():
		dev.size = info.Size()
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		dev.block = true
		if dev.size, dev.sectorSize, err = blockDeviceGeometry(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading the size of disk %s: %w", dev.label, err)
		}
	default:
		f.Close()
		return nil, fmt.Errorf("disk %s is neither a block device nor a regular file (mode %s)", dev.label, mode)
	}
	return dev, nil
}

func (dev *device) Close() error { return dev.f.Close() }

func (dev *device) inside(n int, off int64) error {
	if off < 0 || int64(n) > dev.size || off > dev.size-int64(n) {
		return fmt.Errorf("%d bytes at offset %d are outside disk %s of %d bytes", n, off, dev.label, dev.size)
	}
	return nil
}

func (dev *device) ReadAt(p []byte, off int64) (int, error) {
	if err := dev.inside(len(p), off); err != nil {
		return 0, err
	}
	return dev.f.ReadAt(p, off)
}

func (dev *device) WriteAt(p []byte, off int64) (int, error) {
	if err := dev.inside(len(p), off); err != nil {
		return 0, err
	}
	return dev.f.WriteAt(p, off)
}

// zeroChunk bounds the work between cancellation checks and progress
// reports.
const zeroChunk = 64 << 20

var zeroBuffer = make([]byte, 1<<20)

// zero makes [off, off+n) read back as zeros: BLKZEROOUT on a block device
// (the kernel offloads or writes zeros itself, so the result is certain,
// unlike a discard), a punched hole in a file, or written zeros where
// neither is supported. progress, if set, gets the bytes done so far.
func (dev *device) zero(ctx context.Context, off, n int64, progress func(int64)) error {
	if err := dev.inside(0, off); err != nil {
		return err
	}
	if n < 0 || n > dev.size-off {
		return fmt.Errorf("zeroing %d bytes at offset %d: outside disk %s of %d bytes", n, off, dev.label, dev.size)
	}
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("erasing disk %s stopped at offset %d: %w", dev.label, off+done, err)
		}
		chunk := min(n-done, zeroChunk)
		if err := dev.zeroFast(off+done, chunk); err != nil {
			if err := dev.writeZeros(off+done, chunk); err != nil {
				return err
			}
		}
		done += chunk
		if progress != nil {
			progress(done)
		}
	}
	return nil
}

// zeroFast reports an error when the fast path is unavailable; the caller
// then writes zeros.
func (dev *device) zeroFast(off, n int64) error {
	if dev.slowZero {
		return errors.ErrUnsupported
	}
	if dev.block {
		if off%512 != 0 || n%512 != 0 {
			return errors.ErrUnsupported
		}
		return blockZeroOut(dev.f, off, n)
	}
	return punchHole(dev.f, off, n)
}

func (dev *device) writeZeros(off, n int64) error {
	for n > 0 {
		step := min(n, int64(len(zeroBuffer)))
		if _, err := dev.f.WriteAt(zeroBuffer[:step], off); err != nil {
			return fmt.Errorf("writing zeros to disk %s at offset %d: %w", dev.label, off, err)
		}
		off += step
		n -= step
	}
	return nil
}

func (dev *device) sync() error {
	if err := dev.f.Sync(); err != nil {
		return fmt.Errorf("flushing disk %s: %w", dev.label, err)
	}
	return nil
}

// rereadPartitions tells the kernel the partition table changed. Files
// have no kernel partitions.
func (dev *device) rereadPartitions() error {
	if !dev.block {
		return nil
	}
	if err := rereadPartitionTable(dev.f); err != nil {
		return fmt.Errorf("asking the kernel to re-read the partition table of disk %s: %w", dev.label, err)
	}
	return nil
}
