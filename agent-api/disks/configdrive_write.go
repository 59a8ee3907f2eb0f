package disks

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// ConfigDrivePartition is where WriteConfigDrive put the configdrive.
type ConfigDrivePartition struct {
	Number int
	// Device is the kernel's name for the partition, from Disk.Name.
	Device string
	Start  int64 // bytes from the start of the disk
	Size   int64 // bytes
	// Created is false when an existing config-2 partition was overwritten.
	Created bool
}

// linuxFilesystemType is GPT type 0FC63DAF-8483-4772-8E79-3D69D8477DE4,
// sgdisk's default and so what IPA's "sgdisk -n" gives the partition.
var linuxFilesystemType = [16]byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}

// mbrConfigDriveType is W95 FAT32 (LBA), what IPA's "parted mkpart primary
// fat32" records.
const mbrConfigDriveType = 0x0c

// mbrSectorLimit is the first sector an MBR cannot address.
const mbrSectorLimit = 1 << 32

// WriteConfigDrive writes a configdrive image (from DecodeConfigDrive) to
// the disk that was just imaged, as IPA's create_config_drive_partition: into
// the partition labelled config-2 if there is one, or else into a new
// partition of MaxConfigDriveSize at the end of the disk (less if only less
// is free, as long as the image fits). On GPT the backup table is first moved
// to the end of the disk, as "sgdisk -e" does; on MBR the partition must be
// primary and below 2 TiB. A disk without a partition table is an error.
func WriteConfigDrive(ctx context.Context, disk Disk, image []byte) (ConfigDrivePartition, error) {
	if _, err := checkConfigDriveImage(image); err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive to disk %s: %w", disk.describe(), err)
	}
	if err := ctx.Err(); err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive to disk %s: %w", disk.describe(), err)
	}
	dev, err := openDevice(disk, true)
	if err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive: %w", err)
	}
	defer dev.Close()
	sectorSize := dev.sectorSize
	if !dev.block {
		sectorSize = 0 // a file: detect from the GPT
	}
	part, err := writeConfigDrive(ctx, dev, dev.size, sectorSize, image)
	if err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive to disk %s: %w", dev.label, err)
	}
	if err := dev.sync(); err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive: %w", err)
	}
	if err := dev.rereadPartitions(); err != nil && !isNotPartitionable(err) {
		// (A device the kernel does not partition, such as device-mapper,
		// gets its partition devices from userspace, kpartx.)
		if !isBusy(err) {
			return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive: %w", err)
		}
		// Some other partition is in use: announce just the new one.
		if part.Created {
			if err := addKernelPartition(dev.f, part.Number, part.Start, part.Size); err != nil {
				return ConfigDrivePartition{}, fmt.Errorf("writing the configdrive to disk %s: the partition table is in use and adding partition %d to the kernel failed: %w",
					dev.label, part.Number, err)
			}
		}
	}
	part.Device = PartitionDevice(disk.Name, part.Number)
	return part, nil
}

// diskWriter is what writing a configdrive needs; *device and the tests'
// in-memory disks provide it.
type diskWriter interface {
	io.ReaderAt
	io.WriterAt
}

// zeroer is a diskWriter with a faster way to write zeros.
type zeroer interface {
	zero(ctx context.Context, off, n int64, progress func(int64)) error
}

func zeroRange(ctx context.Context, w diskWriter, off, n int64) error {
	if z, ok := w.(zeroer); ok {
		return z.zero(ctx, off, n, nil)
	}
	for n > 0 {
		step := min(n, int64(len(zeroBuffer)))
		if _, err := w.WriteAt(zeroBuffer[:step], off); err != nil {
			return fmt.Errorf("writing zeros at offset %d: %w", off, err)
		}
		off += step
		n -= step
	}
	return nil
}

func writeAt(w diskWriter, data []byte, off int64, what string) error {
	if _, err := w.WriteAt(data, off); err != nil {
		return fmt.Errorf("writing the %s at offset %d: %w", what, off, err)
	}
	return nil
}

func writeConfigDrive(ctx context.Context, w diskWriter, size, sectorSize int64, image []byte) (ConfigDrivePartition, error) {
	table, err := ParsePartitions(w, size, sectorSize)
	if errors.Is(err, ErrNoPartitionTable) {
		return ConfigDrivePartition{}, errors.New("the disk has no GPT or MBR partition table " +
			"(a whole-disk filesystem image?), so there is no room for a configdrive partition")
	}
	if err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("reading the partition table: %w", err)
	}
	if table.gpt != nil && table.gpt.fromBackup {
		return ConfigDrivePartition{}, errors.New("the primary GPT is damaged (only the backup is valid); repair the image's partition table")
	}
	existing, err := findConfigDrivePartition(w, table)
	if err != nil {
		return ConfigDrivePartition{}, err
	}

	var gptPlan *gptEdit
	if table.gpt != nil {
		if gptPlan, err = planGPTRelocation(table, size); err != nil {
			return ConfigDrivePartition{}, err
		}
	}
	if existing != nil {
		if existing.Size < int64(len(image)) {
			return ConfigDrivePartition{}, fmt.Errorf("the existing %s partition %d holds %d bytes, less than the %d-byte configdrive",
				ConfigDriveLabel, existing.Number, existing.Size, len(image))
		}
		part := ConfigDrivePartition{Number: existing.Number, Start: existing.Start, Size: existing.Size}
		if err := writePartitionData(ctx, w, part, image); err != nil {
			return ConfigDrivePartition{}, err
		}
		if gptPlan != nil {
			if err := gptPlan.write(ctx, w, size); err != nil {
				return ConfigDrivePartition{}, err
			}
		}
		return part, nil
	}

	if gptPlan != nil {
		part, err := gptPlan.addPartition(int64(len(image)))
		if err != nil {
			return ConfigDrivePartition{}, err
		}
		if err := gptPlan.clearOldBackup(ctx, w); err != nil {
			return ConfigDrivePartition{}, err
		}
		if err := writePartitionData(ctx, w, part, image); err != nil {
			return ConfigDrivePartition{}, err
		}
		if err := gptPlan.write(ctx, w, size); err != nil {
			return ConfigDrivePartition{}, err
		}
		return part, nil
	}
	return addMBRPartition(ctx, w, table, size, image)
}

// findConfigDrivePartition finds the partition named or labelled config-2;
// more than one is an error, as in IPA.
func findConfigDrivePartition(r io.ReaderAt, table *PartitionTable) (*Partition, error) {
	var found []Partition
	for _, p := range table.Partitions {
		if p.Extended {
			continue
		}
		if strings.EqualFold(p.Name, ConfigDriveLabel) || strings.EqualFold(filesystemLabel(r, p.Start, p.Size), ConfigDriveLabel) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return &found[0], nil
	}
	return nil, fmt.Errorf("partitions %d and %d are both labelled %s", found[0].Number, found[1].Number, ConfigDriveLabel)
}

// writePartitionData writes the image and zeroes what follows it, so that
// no stale signature later in the partition confuses blkid. Past 128 MiB only
// the partition's last MiB is cleared.
func writePartitionData(ctx context.Context, w diskWriter, part ConfigDrivePartition, image []byte) error {
	if err := writeAt(w, image, part.Start, "configdrive image"); err != nil {
		return err
	}
	rest := part.Size - int64(len(image))
	from := part.Start + int64(len(image))
	if rest > 128<<20 {
		from, rest = part.Start+part.Size-(1<<20), 1<<20
	}
	if err := zeroRange(ctx, w, from, rest); err != nil {
		return fmt.Errorf("clearing the rest of partition %d: %w", part.Number, err)
	}
	return nil
}

// placeAtEnd chooses the sectors of a new partition at the end of the free
// space [lowest, limit): MaxConfigDriveSize aligned to 1 MiB like parted and
// sgdisk, or all that is free after the last partition if that is less
// but still holds the image.
func placeAtEnd(lowest, limit, sectorSize, imageSize int64) (first, last int64, err error) {
	align := max(int64(1<<20)/sectorSize, 1)
	want := int64(MaxConfigDriveSize) / sectorSize
	first = (limit - want) / align * align
	if first < lowest {
		first = (lowest + align - 1) / align * align
	}
	if first >= limit || (limit-first)*sectorSize < imageSize {
		free := max(limit-lowest, 0) * sectorSize
		return 0, 0, fmt.Errorf("only %d bytes are free after the last partition, not enough for the %d-byte configdrive",
			free, imageSize)
	}
	return first, limit - 1, nil
}

// gptEdit is a GPT being changed: the backup moved to the end of the disk
// and maybe an entry added. raw header bytes and entries are kept so that
// every field and entry not changed is written back exactly.
type gptEdit struct {
	table        *PartitionTable
	sectorSize   int64
	primary      []byte // header, headerSize bytes
	entries      []byte
	entrySectors int64
	lastLBA      int64
	oldBackupLBA uint64
}

func planGPTRelocation(table *PartitionTable, size int64) (*gptEdit, error) {
	g := table.gpt
	ss := table.SectorSize
	e := &gptEdit{
		table:        table,
		sectorSize:   ss,
		primary:      append([]byte(nil), g.header.raw...),
		entries:      append([]byte(nil), g.entries...),
		entrySectors: (int64(len(g.entries)) + ss - 1) / ss,
		lastLBA:      size/ss - 1,
		oldBackupLBA: g.header.alternateLBA,
	}
	lastUsable := e.lastLBA - e.entrySectors - 1
	for _, p := range table.Partitions {
		if p.End()/ss-1 > lastUsable {
			return nil, fmt.Errorf("GPT partition %d reaches into the space for the backup GPT at the end of the disk", p.Number)
		}
	}
	if lastUsable < int64(g.header.firstUsableLBA) {
		return nil, errors.New("the disk is too small for its GPT")
	}
	// The usable area grows; the primary entries must not be in its way.
	if g.header.entriesLBA+uint64(e.entrySectors) > g.header.firstUsableLBA {
		return nil, fmt.Errorf("the primary GPT entries (LBA %d) do not precede the first usable LBA %d",
			g.header.entriesLBA, g.header.firstUsableLBA)
	}
	binary.LittleEndian.PutUint64(e.primary[32:], uint64(e.lastLBA))
	binary.LittleEndian.PutUint64(e.primary[48:], uint64(lastUsable))
	return e, nil
}

func (e *gptEdit) lastUsable() int64 { return int64(binary.LittleEndian.Uint64(e.primary[48:])) }

func (e *gptEdit) addPartition(imageSize int64) (ConfigDrivePartition, error) {
	h := e.table.gpt.header
	entrySize := int(h.entrySize)
	slot := -1
	for i := 0; i < int(h.entryCount); i++ {
		if isZero(e.entries[i*entrySize : i*entrySize+16]) {
			slot = i
			break
		}
	}
	if slot < 0 {
		return ConfigDrivePartition{}, fmt.Errorf("all %d GPT entries are in use", h.entryCount)
	}
	lowest := int64(h.firstUsableLBA)
	for _, p := range e.table.Partitions {
		lowest = max(lowest, p.End()/e.sectorSize)
	}
	first, last, err := placeAtEnd(lowest, e.lastUsable()+1, e.sectorSize, imageSize)
	if err != nil {
		return ConfigDrivePartition{}, err
	}
	var unique [16]byte
	if _, err := rand.Read(unique[:]); err != nil {
		return ConfigDrivePartition{}, fmt.Errorf("generating a partition GUID: %w", err)
	}
	unique[7] = unique[7]&0x0f | 0x40 // version 4, in GPT's mixed-endian layout
	unique[8] = unique[8]&0x3f | 0x80

	entry := e.entries[slot*entrySize : (slot+1)*entrySize]
	clear(entry)
	copy(entry[0:16], linuxFilesystemType[:])
	copy(entry[16:32], unique[:])
	binary.LittleEndian.PutUint64(entry[32:], uint64(first))
	binary.LittleEndian.PutUint64(entry[40:], uint64(last))
	for i, u := range utf16.Encode([]rune(ConfigDriveLabel)) {
		binary.LittleEndian.PutUint16(entry[gptEntryNameOffset+2*i:], u)
	}
	return ConfigDrivePartition{
		Number:  slot + 1,
		Start:   first * e.sectorSize,
		Size:    (last - first + 1) * e.sectorSize,
		Created: true,
	}, nil
}

// clearOldBackup erases the header of a backup GPT left inside the disk
// (where the image ended), now free space, so no tool mistakes it for a
// table.
func (e *gptEdit) clearOldBackup(ctx context.Context, w diskWriter) error {
	old := int64(e.oldBackupLBA)
	// Only where the old header said no partition can be.
	if old <= int64(e.table.gpt.header.lastUsableLBA) || old > e.lastUsable() {
		return nil
	}
	return zeroRange(ctx, w, old*e.sectorSize, e.sectorSize)
}

// write puts the backup GPT at the end of the disk, then the primary, then
// fixes the protective MBR's size: a crash before the primary is written
// leaves the old, still valid, primary.
func (e *gptEdit) write(ctx context.Context, w diskWriter, size int64) error {
	ss := e.sectorSize
	entriesCRC := crc32.ChecksumIEEE(e.entries)
	binary.LittleEndian.PutUint32(e.primary[88:], entriesCRC)

	backup := append([]byte(nil), e.primary...)
	backupEntriesLBA := e.lastLBA - e.entrySectors
	binary.LittleEndian.PutUint64(backup[24:], uint64(e.lastLBA))
	binary.LittleEndian.PutUint64(backup[32:], 1)
	binary.LittleEndian.PutUint64(backup[72:], uint64(backupEntriesLBA))
	binary.LittleEndian.PutUint32(backup[16:], gptHeaderCRC(backup))
	binary.LittleEndian.PutUint32(e.primary[16:], gptHeaderCRC(e.primary))

	entryArea := make([]byte, e.entrySectors*ss)
	copy(entryArea, e.entries)
	if err := writeAt(w, entryArea, backupEntriesLBA*ss, "backup GPT entries"); err != nil {
		return err
	}
	if err := writeAt(w, padSector(backup, ss), e.lastLBA*ss, "backup GPT header"); err != nil {
		return err
	}
	primaryEntriesLBA := int64(binary.LittleEndian.Uint64(e.primary[72:]))
	if err := writeAt(w, entryArea, primaryEntriesLBA*ss, "primary GPT entries"); err != nil {
		return err
	}
	if err := writeAt(w, padSector(e.primary, ss), ss, "primary GPT header"); err != nil {
		return err
	}
	return fixProtectiveMBR(w, size/ss)
}

func padSector(header []byte, ss int64) []byte {
	sector := make([]byte, ss)
	copy(sector, header)
	return sector
}

// fixProtectiveMBR makes a standard protective MBR (one 0xEE entry from
// LBA 1) cover the whole disk again, as sgdisk does; hybrid MBRs are left
// alone.
func fixProtectiveMBR(w diskWriter, sectors int64) error {
	mbr := make([]byte, 512)
	if err := readFull(w, mbr, 0); err != nil {
		return fmt.Errorf("reading the protective MBR: %w", err)
	}
	protective := -1
	for i := 0; i < 4; i++ {
		e := readMBREntry(mbr, i)
		if e.count == 0 && e.kind == 0 {
			continue
		}
		if e.kind != mbrProtectiveType || e.start != 1 || protective >= 0 {
			return nil
		}
		protective = i
	}
	if protective < 0 {
		return nil
	}
	count := uint32(min(sectors-1, mbrSectorLimit-1))
	entry := mbr[mbrPartitionsOffset+protective*mbrEntrySize:]
	if binary.LittleEndian.Uint32(entry[12:]) == count {
		return nil
	}
	binary.LittleEndian.PutUint32(entry[12:], count)
	copy(entry[5:8], chsAddress(int64(count)))
	return writeAt(w, mbr, 0, "protective MBR")
}

// chsAddress encodes a sector for an MBR entry's legacy CHS fields with the
// usual 255 heads and 63 sectors a track; beyond what CHS can address it is
// the conventional 1023/254/63.
func chsAddress(lba int64) []byte {
	const heads, sectorsPerTrack = 255, 63
	if lba >= 1024*heads*sectorsPerTrack {
		return []byte{0xfe, 0xff, 0xff}
	}
	cylinder := lba / (heads * sectorsPerTrack)
	head := (lba / sectorsPerTrack) % heads
	sector := lba%sectorsPerTrack + 1
	return []byte{byte(head), byte(sector) | byte(cylinder>>2)&0xc0, byte(cylinder)}
}

func addMBRPartition(ctx context.Context, w diskWriter, table *PartitionTable, size int64, image []byte) (ConfigDrivePartition, error) {
	sector := table.mbr.sector
	ss := table.SectorSize
	slot := -1
	primaries := 0
	for i := 0; i < 4; i++ {
		e := readMBREntry(sector, i)
		if e.count == 0 && e.kind == 0 {
			if slot < 0 {
				slot = i
			}
			continue
		}
		primaries++
	}
	if slot < 0 {
		return ConfigDrivePartition{}, fmt.Errorf("the disk uses MBR partitioning and already has %d primary partitions", primaries)
	}
	lowest := int64(1<<20) / ss
	for _, p := range table.Partitions {
		lowest = max(lowest, p.End()/ss)
	}
	// IPA puts the partition just below 2 TiB on larger disks, the most an
	// MBR can address.
	limit := min(size/ss, mbrSectorLimit)
	first, last, err := placeAtEnd(lowest, limit, ss, int64(len(image)))
	if err != nil {
		return ConfigDrivePartition{}, err
	}
	part := ConfigDrivePartition{Number: slot + 1, Start: first * ss, Size: (last - first + 1) * ss, Created: true}
	if err := writePartitionData(ctx, w, part, image); err != nil {
		return ConfigDrivePartition{}, err
	}
	mbr := append([]byte(nil), sector...)
	entry := mbr[mbrPartitionsOffset+slot*mbrEntrySize : mbrPartitionsOffset+(slot+1)*mbrEntrySize]
	entry[0] = 0
	copy(entry[1:4], chsAddress(first))
	entry[4] = mbrConfigDriveType
	copy(entry[5:8], chsAddress(last))
	binary.LittleEndian.PutUint32(entry[8:], uint32(first))
	binary.LittleEndian.PutUint32(entry[12:], uint32(last-first+1))
	if err := writeAt(w, mbr, 0, "MBR"); err != nil {
		return ConfigDrivePartition{}, err
	}
	return part, nil
}
