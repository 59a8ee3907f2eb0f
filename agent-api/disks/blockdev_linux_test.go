package disks

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// loopDevice attaches a file as a loop block device, so that the ioctl
// paths run against a real block device; skipped where loop devices cannot
// be set up (not root, no loop driver), which says nothing of the code.
func loopDevice(t *testing.T, path string, sectorSize int) string {
	t.Helper()
	requireTool(t, "losetup")
	args := []string{"--show", "--find"}
	if sectorSize != 512 {
		args = append(args, "--sector-size", fmt.Sprint(sectorSize))
	}
	stdout, stderr, err := runTool("", "losetup", append(args, path)...)
	if err != nil {
		t.Skipf("cannot attach a loop device: %v %s", err, stderr)
	}
	dev := strings.TrimSpace(stdout)
	t.Cleanup(func() {
		if _, stderr, err := runTool("", "losetup", "--detach", dev); err != nil {
			t.Errorf("detaching %s: %v %s", dev, err, stderr)
		}
	})
	return dev
}

func TestBlockDeviceGeometry(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			path := diskFile(t, 48<<20)
			loop := loopDevice(t, path, ss)
			dev, err := openDevice(Disk{Name: loop}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			if !dev.block || dev.size != 48<<20 || dev.sectorSize != int64(ss) {
				t.Errorf("block=%v size=%d sectorSize=%d, want a block device of %d bytes in %d-byte sectors",
					dev.block, dev.size, dev.sectorSize, 48<<20, ss)
			}
		})
	}
}

func TestWriteConfigDriveBlockDevice(t *testing.T) {
	requireTool(t, "sfdisk", "blkid")
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			path := diskFile(t, 200<<20)
			loop := loopDevice(t, path, ss)
			run(t, "label: gpt\nsize=20M\nsize=30M\n", "sfdisk", "-q", "--no-reread", loop)
			before := sfdiskJSON(t, loop)

			iso := testISO(t, "loop")
			part, err := WriteConfigDrive(t.Context(), Disk{Name: loop}, iso)
			if err != nil {
				t.Fatal(err)
			}
			after := sfdiskJSON(t, loop)
			partitionsUnchanged(t, before, after)
			if after.PartitionTable.SectorSize != int64(ss) || len(after.PartitionTable.Partitions) != 3 {
				t.Fatalf("sfdisk sees %+v", after.PartitionTable)
			}
			if p := after.PartitionTable.Partitions[2]; p.Name != "config-2" || p.Start*int64(ss) != part.Start {
				t.Errorf("new partition %+v, WriteConfigDrive said %+v", p, part)
			}
			if part.Device != loop+"p3" {
				t.Errorf("device %s, want %sp3", part.Device, loop)
			}
			if got := readFileRange(t, path, part.Start, int64(len(iso))); !bytes.Equal(got, iso) {
				t.Errorf("the backing file does not hold the ISO at %d", part.Start)
			}
			if out := probe(t, loop, part.Start); !strings.Contains(out, `LABEL="config-2"`) {
				t.Errorf("blkid at %d: %s", part.Start, out)
			}
		})
	}
}

func TestEraseBlockDevice(t *testing.T) {
	requireTool(t, "sfdisk", "wipefs")
	path := diskFile(t, 100<<20)
	loop := loopDevice(t, path, 512)
	run(t, "label: gpt\nsize=20M\nsize=30M\n", "sfdisk", "-q", "--no-reread", loop)
	writeFileAt(t, path, bytes.Repeat([]byte{0x5a}, 1<<20), 60<<20)

	if err := EraseMetadata(t.Context(), Disk{Name: loop}); err != nil {
		t.Fatal(err)
	}
	if got := wipefsSignatures(t, loop); len(got) != 0 {
		t.Errorf("wipefs still finds %v on %s", got, loop)
	}
	var reported int64
	if err := EraseAll(t.Context(), Disk{Name: loop}, func(done int64) { reported = done }); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if reported != 100<<20 || !bytes.Equal(data, make([]byte, 100<<20)) {
		t.Errorf("after EraseAll (progress %d) the backing file is not all zeros", reported)
	}
}
