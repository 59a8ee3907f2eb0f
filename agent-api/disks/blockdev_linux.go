package disks

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func blockDeviceGeometry(f *os.File) (size, sectorSize int64, err error) {
	fd := int(f.Fd())
	bytes, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		return 0, 0, err
	}
	ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil {
		return 0, 0, err
	}
	return int64(bytes), int64(ss), nil
}

// blockZeroOut is BLKZEROOUT: the kernel uses the device's write-zeroes
// command where there is one and writes zero pages otherwise, so unlike
// BLKDISCARD the range is certain to read back as zeros.
func blockZeroOut(f *os.File, off, n int64) error {
	span := [2]uint64{uint64(off), uint64(n)}
	return ioctlPointer(f, unix.BLKZEROOUT, unsafe.Pointer(&span))
}

func punchHole(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return errors.ErrUnsupported
	}
	return err
}

func rereadPartitionTable(f *os.File) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKRRPART, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// addKernelPartition tells the kernel about one new partition (BLKPG),
// which works while other partitions of the disk are in use, unlike
// BLKRRPART.
func addKernelPartition(f *os.File, number int, start, size int64) error {
	part := unix.BlkpgPartition{Start: start, Length: size, Pno: int32(number)}
	arg := unix.BlkpgIoctlArg{
		Op:      unix.BLKPG_ADD_PARTITION,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	return ioctlPointer(f, unix.BLKPG, unsafe.Pointer(&arg))
}

func isBusy(err error) bool { return errors.Is(err, unix.EBUSY) }

func ioctlPointer(f *os.File, request uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), request, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// isNotPartitionable: BLKRRPART on a partition, or on a disk the kernel
// does not partition (a loop device without partscan, say).
func isNotPartitionable(err error) bool { return errors.Is(err, unix.EINVAL) }
