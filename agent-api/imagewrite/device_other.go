//go:build !linux

package imagewrite

import (
	"errors"
	"io"
	"log/slog"
	"os"
)

// The agent runs on Linux; elsewhere (a developer's machine) the disk is
// written with plain writes only.

var errNoFastZero = errors.New("no kernel zeroing on this system")

func openBlockDevice(path string) (*os.File, error) { return os.OpenFile(path, os.O_RDWR, 0) }

func blockDeviceSize(f *os.File) (int64, error) { return f.Seek(0, io.SeekEnd) }

func (d *device) zeroFast(off, n int64) error { return errNoFastZero }

func (d *device) startWriteback(off, n int64) {}

func (d *device) awaitWriteback(off, n int64) error { return nil }

func (d *device) rereadPartitions(log *slog.Logger) {}
