package disks

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
)

// virtualMediaLabel is the udev link to the virtual media Ironic attaches
// to pass the agent its configuration; IPA never erases it. A variable for
// the tests.
var virtualMediaLabel = "/dev/disk/by-label/ir-vfd-dev"

// Eligible reports whether cleaning may erase the disk, as IPA's
// _list_erasable_devices decides: not read-only and not Ironic's virtual
// media device. Like IPA, removable disks are erased. IPA also skips
// software RAID members, leaving them to its RAID cleaning step; here their
// superblocks are erased like any other metadata, so a caller that manages
// software RAID must leave the members out itself.
func Eligible(d Disk) bool {
	if d.ReadOnly {
		return false
	}
	return !isVirtualMedia(d.Name)
}

func isVirtualMedia(name string) bool {
	target, err := filepath.EvalSymlinks(virtualMediaLabel)
	if err != nil {
		return false
	}
	return target == name
}

const mib = 1 << 20

// Regions zeroed at the start and at the end of the disk and of every
// partition. They cover what wipefs --all finds there: partition tables
// (MBR, both GPT copies, BSD, Sun, SGI), filesystem superblocks (ext, XFS,
// FAT, NTFS, exFAT, ISO9660, UDF, ReiserFS, JFS, F2FS, HFS+, bcache,
// swap, LVM, LUKS1, ZFS's four labels, NILFS2's backup, NTFS's backup boot
// sector) and RAID metadata (md 0.90 and 1.0 at the end, 1.1 and 1.2 at
// the start, Intel and DDF anchors in the last sectors).
const (
	eraseHead = 1 * mib
	eraseTail = 1 * mib
)

// eraseSpots are further 4 KiB blocks, as offsets from the start of the
// disk or partition, where signatures live beyond the first MiB.
var eraseSpots = []int64{
	1 * mib,   // VMFS volume header; UDF anchor with 4 KiB blocks
	2 * mib,   // VMFS filesystem; LUKS2 secondary header
	4 * mib,   // LUKS2 secondary header (largest header size)
	64 * mib,  // btrfs superblock mirror 1
	256 << 30, // btrfs superblock mirror 2
	1 << 50,   // btrfs superblock mirror 3
}

const spotSize = 4096

// span is a byte range of the disk.
type span struct{ start, end int64 }

// EraseMetadata destroys what identifies the disk's contents, as IPA's
// erase_devices_metadata (wipefs --all on the disk and each partition, then
// zeroing both GPT copies): for the disk and each partition found in its
// tables, the first and last MiB and the spots listed in eraseSpots are
// zeroed, along with the extended boot records of logical partitions and any
// backup GPT left where the image used to end. The partition table is read
// leniently, so a damaged table still has everything it can locate erased.
func EraseMetadata(ctx context.Context, disk Disk) error {
	dev, err := openDevice(disk, true)
	if err != nil {
		return fmt.Errorf("erasing metadata: %w", err)
	}
	defer dev.Close()
	spans := metadataSpans(dev, dev.size, dev.sectorSize, !dev.block)
	for _, s := range spans {
		if err := dev.zero(ctx, s.start, s.end-s.start, nil); err != nil {
			return fmt.Errorf("erasing metadata: %w", err)
		}
	}
	if err := dev.sync(); err != nil {
		return fmt.Errorf("erasing metadata: %w", err)
	}
	return rereadAfterErase(dev)
}

// rereadAfterErase drops the kernel's view of the erased partitions. A busy
// disk keeps its stale view until it is released, but the data is erased,
// which is what cleaning asked for.
func rereadAfterErase(dev *device) error {
	if err := dev.rereadPartitions(); err != nil && !isBusy(err) && !isNotPartitionable(err) {
		return fmt.Errorf("erasing metadata: %w", err)
	}
	return nil
}

// metadataSpans lists the ranges to zero, merged and sorted.
func metadataSpans(r io.ReaderAt, size, sectorSize int64, detectSectorSize bool) []span {
	var spans []span
	add := func(start, length int64) {
		start = max(start, 0)
		end := min(start+length, size)
		if start < end {
			spans = append(spans, span{start, end})
		}
	}
	region := func(start, length int64) {
		add(start, min(eraseHead, length))
		add(start+length-min(eraseTail, length), min(eraseTail, length))
		for _, off := range eraseSpots {
			if off+spotSize <= length {
				add(start+off, spotSize)
			}
		}
	}
	region(0, size)

	ss := sectorSize
	if detectSectorSize {
		ss = 0
	}
	for _, t := range lenientTables(r, size, ss) {
		for _, p := range t.Partitions {
			region(p.Start, p.Size)
		}
		if t.mbr != nil {
			for _, ebr := range t.mbr.ebrs {
				add(ebr*t.SectorSize, t.SectorSize)
			}
		}
		if t.gpt != nil {
			h := t.gpt.header
			tss := t.SectorSize
			arraySectors := (int64(len(t.gpt.entries)) + tss - 1) / tss
			add(int64(h.entriesLBA)*tss, arraySectors*tss)
			add(int64(h.alternateLBA)*tss, tss)
		}
	}
	return mergeSpans(spans)
}

// lenientTables reads every partition table that can be found: the MBR,
// and both GPT copies in either sector size, since any of them may be the
// one some tool would use.
func lenientTables(r io.ReaderAt, size, sectorSize int64) []*PartitionTable {
	var tables []*PartitionTable
	if t, err := parsePartitions(r, size, sectorSize, false); err == nil {
		tables = append(tables, t)
	}
	for _, ss := range []int64{512, 4096} {
		if sectorSize != 0 && ss != sectorSize {
			continue
		}
		if size < 3*ss {
			continue
		}
		// The primary too, in case the protective MBR is gone.
		for _, lba := range []uint64{1, uint64(size/ss) - 1} {
			g, err := readGPT(r, lba, size, ss)
			if err != nil {
				continue
			}
			t := &PartitionTable{Type: "gpt", SectorSize: ss, gpt: g}
			if parsed, err := parseGPTEntries(g, size, ss, false); err == nil {
				t.Partitions = parsed
			}
			tables = append(tables, t)
		}
	}
	return tables
}

func mergeSpans(spans []span) []span {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// EraseAll overwrites the whole disk with zeros, as IPA's erase_devices
// does with shred's final zero pass (without its random passes or ATA/NVMe
// secure erase): BLKZEROOUT on block devices, falling back to writing
// zeros; hole punching or zeros on files. progress, if not nil, is called
// with the bytes erased so far after each 64 MiB.
func EraseAll(ctx context.Context, disk Disk, progress func(int64)) error {
	dev, err := openDevice(disk, true)
	if err != nil {
		return fmt.Errorf("erasing: %w", err)
	}
	defer dev.Close()
	if err := dev.zero(ctx, 0, dev.size, progress); err != nil {
		return fmt.Errorf("erasing: %w", err)
	}
	if err := dev.sync(); err != nil {
		return fmt.Errorf("erasing: %w", err)
	}
	return rereadAfterErase(dev)
}

// ReadPartitions reads the disk's partition table (see ParsePartitions).
func ReadPartitions(disk Disk) (*PartitionTable, error) {
	dev, err := openDevice(disk, false)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	ss := dev.sectorSize
	if !dev.block {
		ss = 0
	}
	table, err := ParsePartitions(dev, dev.size, ss)
	if err != nil {
		return nil, fmt.Errorf("reading the partition table of disk %s: %w", dev.label, err)
	}
	return table, nil
}
