//go:build !linux

package disks

import (
	"errors"
	"os"
)

// The agent runs on Linux; elsewhere only regular files stand in for disks.

var errNotLinux = errors.New("block device operations need Linux")

func blockDeviceGeometry(*os.File) (int64, int64, error) { return 0, 0, errNotLinux }

func blockZeroOut(*os.File, int64, int64) error { return errors.ErrUnsupported }

func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }

func rereadPartitionTable(*os.File) error { return errNotLinux }

func addKernelPartition(*os.File, int, int64, int64) error { return errNotLinux }

func isBusy(error) bool { return false }

func isNotPartitionable(error) bool { return false }
