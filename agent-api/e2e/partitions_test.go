package e2e_test

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// mbrEntry is a primary partition of an MBR.
type mbrEntry struct{ start, sectors uint32 }

func mbrEntries(t *testing.T, disk string) []mbrEntry {
	t.Helper()
	mbr := diskPrefix(t, disk, 512)
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Fatal("the disk has no MBR")
	}
	var out []mbrEntry
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		if e[4] == 0 {
			continue
		}
		out = append(out, mbrEntry{binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])})
	}
	return out
}

func lastPartition(t *testing.T, disk string) mbrEntry {
	t.Helper()
	entries := mbrEntries(t, disk)
	if len(entries) < 2 {
		t.Fatalf("the disk has %d partitions: no configdrive partition was added", len(entries))
	}
	last := entries[0]
	for _, e := range entries[1:] {
		if e.start > last.start {
			last = e
		}
	}
	return last
}

func lastPartitionOffset(t *testing.T, disk string) int64 {
	return int64(lastPartition(t, disk).start) * 512
}

// extractLastPartition copies the last partition into a file of its own.
func extractLastPartition(t *testing.T, disk string) string {
	t.Helper()
	p := lastPartition(t, disk)
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := filepath.Join(t.TempDir(), "partition.iso")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := io.Copy(w, io.NewSectionReader(f, int64(p.start)*512, int64(p.sectors)*512)); err != nil {
		t.Fatal(err)
	}
	return out
}
