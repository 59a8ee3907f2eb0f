package imagewrite

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openBlockDevice opens exclusively, so that a disk with a mounted
// filesystem or claimed by md or LVM is refused instead of overwritten.
func openBlockDevice(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_EXCL, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("%s is in use (mounted, or held by md, LVM or device-mapper)", path)
	}
	return f, err
}

func blockDeviceSize(f *os.File) (int64, error) {
	size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err == nil {
		return int64(size), nil
	}
	end, serr := f.Seek(0, io.SeekEnd)
	if serr != nil {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), err)
	}
	return end, nil
}

// zeroFast has the kernel zero a range: a hole punched in a regular file,
// BLKZEROOUT on a block device (which needs 512-byte alignment; the
// unaligned head and tail are written).
func (d *device) zeroFast(off, n int64) error {
	fd := int(d.f.Fd())
	if !d.isBlock {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}
	start := (off + 511) &^ 511
	end := (off + n) &^ 511
	if end <= start {
		return errors.ErrUnsupported
	}
	r := [2]uint64{uint64(start), uint64(end - start)}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0]))); errno != 0 {
		return errno
	}
	if start > off {
		if err := d.writeAt(d.zeroSlice(start-off), off); err != nil {
			return err
		}
	}
	if off+n > end {
		if err := d.writeAt(d.zeroSlice(off+n-end), end); err != nil {
			return err
		}
	}
	return nil
}

func (d *device) zeroSlice(n int64) []byte {
	if d.zeros == nil {
		d.zeros = make([]byte, zeroChunk)
	}
	return d.zeros[:n]
}

// startWriteback has the kernel begin writing a range out without waiting.
func (d *device) startWriteback(off, n int64) {
	_ = unix.SyncFileRange(int(d.f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// awaitWriteback waits until a range is on the disk and drops it from the
// page cache: the image's pages are of no use to the agent, and a machine
// with little memory needs them back.
func (d *device) awaitWriteback(off, n int64) error {
	fd := int(d.f.Fd())
	err := unix.SyncFileRange(fd, off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	if err != nil && !errors.Is(err, unix.ESPIPE) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w: writing back %s: %w", ErrDevice, d.path, err)
	}
	_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
	return nil
}

// rereadPartitions has the kernel read the new partition table. A failure
// is logged only: the image is on the disk, and whoever needs the
// partitions next can rescan.
func (d *device) rereadPartitions(log *slog.Logger) {
	if !d.isBlock {
		return
	}
	if err := unix.IoctlSetInt(int(d.f.Fd()), unix.BLKRRPART, 0); err != nil {
		log.Warn("re-reading the partition table failed", "device", d.path, "error", err)
	}
}
