package disks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wipefsSignatures is what wipefs --no-act --json finds.
func wipefsSignatures(t *testing.T, path string) []string {
	t.Helper()
	out := run(t, "", "wipefs", "--no-act", "--json", path)
	if strings.TrimSpace(out) == "" {
		return nil
	}
	var report struct {
		Signatures []struct {
			Type   string `json:"type"`
			Offset string `json:"offset"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("wipefs --json: %v\n%s", err, out)
	}
	var found []string
	for _, s := range report.Signatures {
		found = append(found, s.Type+"@"+s.Offset)
	}
	return found
}

// probe is blkid's low-level probe of what lies at offset: "" when it finds
// nothing (exit status 2).
func probe(t *testing.T, path string, offset int64) string {
	t.Helper()
	stdout, stderr, err := runTool("", "blkid", "-p", "-O", fmt.Sprint(offset), path)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return ""
	}
	if err != nil {
		t.Fatalf("blkid -p -O %d %s: %v\n%s", offset, path, err, stderr)
	}
	return strings.TrimSpace(stdout)
}

func writeFileAt(t *testing.T, path string, data []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func TestEraseMetadataGPT(t *testing.T) {
	requireTool(t, "sfdisk", "mkfs.ext4", "mkfs.vfat", "wipefs", "blkid")
	path := diskFile(t, 400<<20)
	run(t, "label: gpt\nsize=64M, name=root\nsize=100M, type=U, name=efi\nsize=80M, name=cd\n", "sfdisk", "-q", path)
	table := sfdiskJSON(t, path)
	parts := table.PartitionTable.Partitions
	p1, p2, p3 := parts[0].Start*512, parts[1].Start*512, parts[2].Start*512
	run(t, "", "mkfs.ext4", "-q", "-F", "-L", "root", "-E", fmt.Sprintf("offset=%d", p1), path, fmt.Sprintf("%dk", parts[0].Size/2))
	run(t, "", "mkfs.vfat", "-n", "EFI", "--offset", fmt.Sprint(parts[1].Start), path, fmt.Sprint(parts[1].Size/2))
	writeFileAt(t, path, testISO(t, "erase"), p3)
	// Data that is not metadata stays: cleaning by metadata is not a wipe.
	marker := []byte("user data in the middle of partition 2")
	writeFileAt(t, path, marker, p2+50<<20)
	// The image was smaller than the disk: its backup GPT is mid-disk.
	growFile(t, path, 500<<20)

	if got := readFileRange(t, path, (400<<20)-512, 8); string(got) != gptSignature {
		t.Fatalf("no backup GPT header where the image ends: %q", got)
	}
	if got := fmt.Sprint(wipefsSignatures(t, path)); !strings.Contains(got, "gpt") || !strings.Contains(got, "PMBR") {
		t.Fatalf("wipefs finds %s before erasing, want the GPT and its protective MBR", got)
	}
	for off, want := range map[int64]string{p1: `TYPE="ext4"`, p2: `TYPE="vfat"`, p3: `TYPE="iso9660"`} {
		if got := probe(t, path, off); !strings.Contains(got, want) {
			t.Fatalf("blkid at %d: %q, want %s", off, got, want)
		}
	}

	if err := EraseMetadata(t.Context(), testDisk(path)); err != nil {
		t.Fatal(err)
	}
	if got := wipefsSignatures(t, path); len(got) != 0 {
		t.Errorf("wipefs still finds %v", got)
	}
	for _, off := range []int64{0, p1, p2, p3} {
		if got := probe(t, path, off); got != "" {
			t.Errorf("blkid still finds at offset %d: %s", off, got)
		}
	}
	if _, _, err := runTool("", "sfdisk", "--json", path); err == nil {
		t.Errorf("sfdisk still reads a partition table")
	}
	oldBackup := readFileRange(t, path, (400<<20)-512, 512)
	if !bytes.Equal(oldBackup, make([]byte, 512)) {
		t.Errorf("the backup GPT header where the image ended survived")
	}
	if got := readFileRange(t, path, p2+50<<20, int64(len(marker))); !bytes.Equal(got, marker) {
		t.Errorf("data in the middle of a partition was erased")
	}
}

func TestEraseMetadataMBRLogical(t *testing.T) {
	requireTool(t, "sfdisk", "mkfs.ext4", "wipefs", "blkid")
	path := diskFile(t, 200<<20)
	run(t, "label: dos\n,40M,83\n,40M,83\n,40M,83\n,+,5\n,30M,83\n,30M,83\n", "sfdisk", "-q", path)
	parts := sfdiskJSON(t, path).PartitionTable.Partitions
	if len(parts) != 6 {
		t.Fatalf("sfdisk made %+v", parts)
	}
	logical := parts[5] // the second logical partition
	run(t, "", "mkfs.ext4", "-q", "-F", "-E", fmt.Sprintf("offset=%d", logical.Start*512), path, fmt.Sprintf("%dk", logical.Size/2))
	if got := probe(t, path, logical.Start*512); !strings.Contains(got, `TYPE="ext4"`) {
		t.Fatalf("blkid at the logical partition: %q", got)
	}
	// The EBR describing the second logical partition sits before it.
	table, err := ReadPartitions(testDisk(path))
	if err != nil {
		t.Fatal(err)
	}
	ebrs := table.mbr.ebrs
	if len(ebrs) != 2 {
		t.Fatalf("want two extended boot records, got %v", ebrs)
	}

	if err := EraseMetadata(t.Context(), testDisk(path)); err != nil {
		t.Fatal(err)
	}
	if got := wipefsSignatures(t, path); len(got) != 0 {
		t.Errorf("wipefs still finds %v", got)
	}
	for _, p := range parts {
		if got := probe(t, path, p.Start*512); got != "" {
			t.Errorf("blkid still finds at partition %s: %s", p.Node, got)
		}
	}
	for _, ebr := range ebrs {
		if got := readFileRange(t, path, ebr*512, 512); !bytes.Equal(got, make([]byte, 512)) {
			t.Errorf("extended boot record at sector %d survived", ebr)
		}
	}
}

func TestEraseMetadataWholeDiskFilesystem(t *testing.T) {
	requireTool(t, "mkfs.ext4", "mkswap", "wipefs", "blkid")
	for _, fs := range []string{"ext4", "swap"} {
		t.Run(fs, func(t *testing.T) {
			path := diskFile(t, 64<<20)
			if fs == "swap" {
				run(t, "", "mkswap", path)
			} else {
				run(t, "", "mkfs.ext4", "-q", "-F", path)
			}
			if got := probe(t, path, 0); !strings.Contains(got, `TYPE="`+fs+`"`) {
				t.Fatalf("blkid before: %q", got)
			}
			if err := EraseMetadata(t.Context(), testDisk(path)); err != nil {
				t.Fatal(err)
			}
			if got := wipefsSignatures(t, path); len(got) != 0 {
				t.Errorf("wipefs still finds %v", got)
			}
		})
	}
}

// TestEraseMetadataSpots checks the signature locations past the first and
// last MiB, on the disk and relative to a partition.
func TestEraseMetadataSpots(t *testing.T) {
	const size = 300 << 30 // sparse; reaches btrfs's mirror at 256 GiB
	path := diskFile(t, size)
	disk := make([]byte, 3*512)
	writeTestMBR(disk, []testPart{{first: 2048, last: 2048 + (100<<20)/512, kind: 0x83}})
	writeFileAt(t, path, disk[:512], 0)
	partStart := int64(2048 * 512)
	magic := []byte("_BHRfS_M")
	spots := []int64{
		64<<20 + 0x40, 256<<30 + 0x40, // btrfs mirrors of a whole-disk btrfs
		partStart + 64<<20 + 0x40,           // and of one in the partition
		2 << 20, 4 << 20, partStart + 4<<20, // LUKS2 secondary headers
		1 << 20, partStart + 1<<20, // VMFS
	}
	for _, off := range spots {
		writeFileAt(t, path, magic, off)
	}
	untouched := int64(8 << 20)
	writeFileAt(t, path, magic, untouched)

	if err := EraseMetadata(t.Context(), testDisk(path)); err != nil {
		t.Fatal(err)
	}
	for _, off := range spots {
		if got := readFileRange(t, path, off, int64(len(magic))); !bytes.Equal(got, make([]byte, len(magic))) {
			t.Errorf("signature at offset %d survived", off)
		}
	}
	if got := readFileRange(t, path, untouched, int64(len(magic))); !bytes.Equal(got, magic) {
		t.Errorf("data at offset %d, where no signature lives, was erased", untouched)
	}
}

func TestEraseAll(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(fmt.Sprintf("slowZero=%v", slow), func(t *testing.T) {
			const size = 150 << 20
			path := diskFile(t, size)
			for _, off := range []int64{0, 1 << 20, 70 << 20, size - 4096} {
				writeFileAt(t, path, bytes.Repeat([]byte{0xa5}, 4096), off)
			}
			dev, err := openDevice(testDisk(path), true)
			if err != nil {
				t.Fatal(err)
			}
			dev.slowZero = slow
			var reports []int64
			err = dev.zero(t.Context(), 0, dev.size, func(done int64) { reports = append(reports, done) })
			dev.Close()
			if err != nil {
				t.Fatal(err)
			}
			if want := []int64{64 << 20, 128 << 20, size}; fmt.Sprint(reports) != fmt.Sprint(want) {
				t.Errorf("progress %v, want %v", reports, want)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != size || !bytes.Equal(data, make([]byte, size)) {
				t.Errorf("the disk is not all zeros (or changed size to %d)", len(data))
			}
		})
	}

	t.Run("EraseAll", func(t *testing.T) {
		path := diskFile(t, 10<<20)
		writeFileAt(t, path, []byte("data"), 5<<20)
		var last int64
		if err := EraseAll(t.Context(), testDisk(path), func(done int64) { last = done }); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		if last != 10<<20 || !bytes.Equal(data, make([]byte, 10<<20)) {
			t.Errorf("progress ended at %d; all zeros: %v", last, bytes.Equal(data, make([]byte, 10<<20)))
		}
	})
}

func TestEraseCancelled(t *testing.T) {
	const size = 200 << 20
	path := diskFile(t, size)
	marker := []byte("still here")
	writeFileAt(t, path, marker, size-1<<20)

	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := EraseAll(ctx, testDisk(path), func(int64) { calls++; cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Errorf("erasing went on for %d chunks after cancellation", calls)
	}
	if got := readFileRange(t, path, size-1<<20, int64(len(marker))); !bytes.Equal(got, marker) {
		t.Errorf("data past the cancellation point was erased")
	}

	if err := EraseMetadata(ctx, testDisk(path)); !errors.Is(err, context.Canceled) {
		t.Errorf("EraseMetadata with a cancelled context: got %v", err)
	}
}

func TestEraseRefuses(t *testing.T) {
	path := diskFile(t, 1<<20)
	disk := testDisk(path)
	disk.ReadOnly = true
	if err := EraseMetadata(t.Context(), disk); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("EraseMetadata on a read-only disk: %v", err)
	}
	if err := EraseAll(t.Context(), disk, nil); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("EraseAll on a read-only disk: %v", err)
	}
	if err := EraseAll(t.Context(), Disk{Name: "/dev/sdz", Path: filepath.Join(t.TempDir(), "missing")}, nil); err == nil ||
		!strings.Contains(err.Error(), "/dev/sdz") {
		t.Errorf("EraseAll on a missing disk: %v", err)
	}
}

func TestEligible(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ir-vfd-dev")
	target := filepath.Join(dir, "sdv")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sdv", link); err != nil {
		t.Fatal(err)
	}
	saved := virtualMediaLabel
	virtualMediaLabel = link
	t.Cleanup(func() { virtualMediaLabel = saved })

	tests := []struct {
		disk Disk
		want bool
	}{
		{Disk{Name: "/dev/sda"}, true},
		{Disk{Name: "/dev/sda", Removable: true}, true}, // IPA erases removable disks
		{Disk{Name: "/dev/sda", ReadOnly: true}, false},
		{Disk{Name: target}, false}, // Ironic's virtual media
	}
	for _, tt := range tests {
		if got := Eligible(tt.disk); got != tt.want {
			t.Errorf("Eligible(%+v) = %v, want %v", tt.disk, got, tt.want)
		}
	}
}
