package disks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"unicode/utf16"
)

// ErrNoPartitionTable is returned by ParsePartitions for a disk without a
// GPT or MBR, such as one holding a whole-disk filesystem image.
var ErrNoPartitionTable = errors.New("no partition table")

// PartitionTable is a disk's GPT or MBR.
type PartitionTable struct {
	Type       string // "gpt" or "dos", as blkid names them
	SectorSize int64
	// ID is the GPT disk GUID or the MBR disk signature (0x1234abcd).
	ID         string
	Partitions []Partition

	gpt *gptTable
	mbr *mbrTable
}

// Partition is one entry of a partition table.
type Partition struct {
	Number int   // as the kernel numbers it: GPT entry index + 1; MBR 1-4 primary, 5+ logical
	Start  int64 // bytes from the start of the disk
	Size   int64 // bytes
	// Type is the GPT partition type GUID, or the MBR system ID as "0x83".
	Type string
	GUID string // GPT unique partition GUID
	Name string // GPT partition name
	// Extended marks an MBR extended partition, the container of the
	// logical ones.
	Extended bool
}

// End is the offset just past the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// Limits that keep a hostile table from costing more than a real one can.
const (
	maxGPTEntryArray  = 4 << 20 // bytes; the usual array is 16 KiB
	maxGPTEntrySize   = 4096
	maxLogicalEntries = 256 // the kernel's DISK_MAX_PARTS
)

const (
	gptSignature         = "EFI PART"
	gptHeaderMinSize     = 92
	mbrSignatureOffset   = 510
	mbrPartitionsOffset  = 446
	mbrProtectiveType    = 0xee
	mbrEntrySize         = 16
	gptEntryNameOffset   = 56
	gptEntryNameCodeUnit = 36
)

// ParsePartitions reads the GPT or MBR of a disk of the given size in bytes.
// sectorSize is the logical sector size, or 0 to take 512 unless a GPT is
// found at 4096. Every entry is checked against the disk: a table naming
// space outside it, overlapping partitions, or bad checksums are errors.
func ParsePartitions(r io.ReaderAt, size, sectorSize int64) (*PartitionTable, error) {
	return parsePartitions(r, size, sectorSize, true)
}

// parsePartitions with strict false drops the entries that fail the checks
// instead of failing, for erasing: whatever can be located is wiped.
func parsePartitions(r io.ReaderAt, size, sectorSize int64, strict bool) (*PartitionTable, error) {
	if sectorSize != 0 && sectorSize != 512 && sectorSize != 1024 && sectorSize != 2048 && sectorSize != 4096 {
		return nil, fmt.Errorf("unsupported logical sector size %d", sectorSize)
	}
	if size < 512 {
		return nil, ErrNoPartitionTable
	}
	mbr := make([]byte, 512)
	if err := readFull(r, mbr, 0); err != nil {
		return nil, fmt.Errorf("reading the MBR: %w", err)
	}
	if mbr[mbrSignatureOffset] != 0x55 || mbr[mbrSignatureOffset+1] != 0xaa || !plausibleMBR(mbr) {
		return nil, ErrNoPartitionTable
	}
	if hasProtectiveEntry(mbr) {
		if sectorSize == 0 {
			sectorSize = detectGPTSectorSize(r, size)
		}
		return parseGPT(r, size, sectorSize, strict)
	}
	if sectorSize == 0 {
		sectorSize = 512
	}
	return parseMBR(r, mbr, size, sectorSize, strict)
}

func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// plausibleMBR rejects boot sectors of whole-disk filesystems, which also
// end in 55 AA, the way libblkid does: valid boot flags and no FAT, NTFS or
// exFAT boot sector.
func plausibleMBR(sector []byte) bool {
	for i := 0; i < 4; i++ {
		if flag := sector[mbrPartitionsOffset+i*mbrEntrySize]; flag != 0 && flag != 0x80 {
			return false
		}
	}
	if bytes.Equal(sector[3:11], []byte("NTFS    ")) || bytes.Equal(sector[3:11], []byte("EXFAT   ")) {
		return false
	}
	if sector[0] == 0xeb || sector[0] == 0xe9 {
		if bytes.HasPrefix(sector[54:], []byte("FAT1")) || bytes.HasPrefix(sector[82:], []byte("FAT32")) {
			return false
		}
	}
	return true
}

func hasProtectiveEntry(mbr []byte) bool {
	for i := 0; i < 4; i++ {
		if mbr[mbrPartitionsOffset+i*mbrEntrySize+4] == mbrProtectiveType {
			return true
		}
	}
	return false
}

func detectGPTSectorSize(r io.ReaderAt, size int64) int64 {
	sig := make([]byte, len(gptSignature))
	for _, ss := range []int64{512, 4096} {
		if 2*ss <= size && readFull(r, sig, ss) == nil && string(sig) == gptSignature {
			return ss
		}
	}
	return 512
}

// gptHeader holds the fields of a GPT header that are checked or changed;
// raw keeps the rest byte for byte.
type gptHeader struct {
	raw            []byte // headerSize bytes
	myLBA          uint64
	alternateLBA   uint64
	firstUsableLBA uint64
	lastUsableLBA  uint64
	diskGUID       [16]byte
	entriesLBA     uint64
	entryCount     uint32
	entrySize      uint32
	entriesCRC     uint32
}

type gptTable struct {
	header  gptHeader
	entries []byte // entryCount * entrySize bytes, as on disk
	// fromBackup is set when the primary header was unusable.
	fromBackup bool
}

func readGPTHeader(r io.ReaderAt, lba uint64, size, ss int64) (gptHeader, error) {
	var h gptHeader
	sector := make([]byte, ss)
	if err := readFull(r, sector, int64(lba)*ss); err != nil {
		return h, fmt.Errorf("reading the GPT header at LBA %d: %w", lba, err)
	}
	if string(sector[:8]) != gptSignature {
		return h, fmt.Errorf("no GPT header at LBA %d", lba)
	}
	headerSize := binary.LittleEndian.Uint32(sector[12:])
	if headerSize < gptHeaderMinSize || int64(headerSize) > ss {
		return h, fmt.Errorf("GPT header at LBA %d has an invalid size %d", lba, headerSize)
	}
	h.raw = append([]byte(nil), sector[:headerSize]...)
	want := binary.LittleEndian.Uint32(h.raw[16:])
	if got := gptHeaderCRC(h.raw); got != want {
		return h, fmt.Errorf("GPT header at LBA %d has a bad checksum (%08x, computed %08x)", lba, want, got)
	}
	h.myLBA = binary.LittleEndian.Uint64(h.raw[24:])
	h.alternateLBA = binary.LittleEndian.Uint64(h.raw[32:])
	h.firstUsableLBA = binary.LittleEndian.Uint64(h.raw[40:])
	h.lastUsableLBA = binary.LittleEndian.Uint64(h.raw[48:])
	copy(h.diskGUID[:], h.raw[56:72])
	h.entriesLBA = binary.LittleEndian.Uint64(h.raw[72:])
	h.entryCount = binary.LittleEndian.Uint32(h.raw[80:])
	h.entrySize = binary.LittleEndian.Uint32(h.raw[84:])
	h.entriesCRC = binary.LittleEndian.Uint32(h.raw[88:])

	sectors := uint64(size / ss)
	if h.myLBA != lba {
		return h, fmt.Errorf("GPT header at LBA %d says it is at LBA %d", lba, h.myLBA)
	}
	if h.entrySize < 128 || h.entrySize > maxGPTEntrySize || h.entrySize&(h.entrySize-1) != 0 {
		return h, fmt.Errorf("GPT header at LBA %d has an invalid entry size %d", lba, h.entrySize)
	}
	arrayBytes := uint64(h.entryCount) * uint64(h.entrySize)
	if arrayBytes > maxGPTEntryArray {
		return h, fmt.Errorf("GPT header at LBA %d declares %d entries of %d bytes, more than the %d bytes allowed",
			lba, h.entryCount, h.entrySize, maxGPTEntryArray)
	}
	arraySectors := (arrayBytes + uint64(ss) - 1) / uint64(ss)
	if h.firstUsableLBA > h.lastUsableLBA+1 || h.lastUsableLBA >= sectors || h.firstUsableLBA < 2 {
		return h, fmt.Errorf("GPT header at LBA %d has usable LBAs %d-%d, outside a disk of %d sectors",
			lba, h.firstUsableLBA, h.lastUsableLBA, sectors)
	}
	entriesEnd := h.entriesLBA + arraySectors
	if h.entriesLBA < 2 || entriesEnd < h.entriesLBA || entriesEnd > sectors ||
		(h.entriesLBA <= h.lastUsableLBA && entriesEnd > h.firstUsableLBA) {
		return h, fmt.Errorf("GPT header at LBA %d puts its entries at LBAs %d-%d, outside the disk's free area",
			lba, h.entriesLBA, entriesEnd)
	}
	if lba >= h.firstUsableLBA && lba <= h.lastUsableLBA {
		return h, fmt.Errorf("GPT header at LBA %d lies inside its own usable area", lba)
	}
	return h, nil
}

func gptHeaderCRC(raw []byte) uint32 {
	c := crc32.NewIEEE()
	c.Write(raw[:16])
	c.Write([]byte{0, 0, 0, 0})
	c.Write(raw[20:])
	return c.Sum32()
}

func readGPT(r io.ReaderAt, lba uint64, size, ss int64) (*gptTable, error) {
	h, err := readGPTHeader(r, lba, size, ss)
	if err != nil {
		return nil, err
	}
	entries := make([]byte, int(h.entryCount)*int(h.entrySize))
	if err := readFull(r, entries, int64(h.entriesLBA)*ss); err != nil {
		return nil, fmt.Errorf("reading the GPT entries at LBA %d: %w", h.entriesLBA, err)
	}
	if got := crc32.ChecksumIEEE(entries); got != h.entriesCRC {
		return nil, fmt.Errorf("GPT entries at LBA %d have a bad checksum (%08x, computed %08x)", h.entriesLBA, h.entriesCRC, got)
	}
	return &gptTable{header: h, entries: entries}, nil
}

func parseGPT(r io.ReaderAt, size, ss int64, strict bool) (*PartitionTable, error) {
	if size < 3*ss {
		return nil, fmt.Errorf("disk of %d bytes is too small for a GPT", size)
	}
	gpt, primaryErr := readGPT(r, 1, size, ss)
	if primaryErr != nil {
		var backupErr error
		gpt, backupErr = readGPT(r, uint64(size/ss)-1, size, ss)
		if backupErr != nil {
			return nil, fmt.Errorf("primary GPT: %w; backup GPT: %w", primaryErr, backupErr)
		}
		gpt.fromBackup = true
	}
	parts, err := parseGPTEntries(gpt, size, ss, strict)
	if err != nil {
		return nil, err
	}
	return &PartitionTable{Type: "gpt", SectorSize: ss, ID: formatGUID(gpt.header.diskGUID[:]), gpt: gpt, Partitions: parts}, nil
}

// parseGPTEntries lists the used entries, checking each against the usable
// area and the others.
func parseGPTEntries(gpt *gptTable, size, ss int64, strict bool) ([]Partition, error) {
	var parts []Partition
	sectors := size / ss
	h := gpt.header
	for i := 0; i < int(h.entryCount); i++ {
		entry := gpt.entries[i*int(h.entrySize) : (i+1)*int(h.entrySize)]
		if isZero(entry[:16]) {
			continue
		}
		first := binary.LittleEndian.Uint64(entry[32:])
		last := binary.LittleEndian.Uint64(entry[40:])
		if first > last || first < h.firstUsableLBA || last > h.lastUsableLBA {
			if strict {
				return nil, fmt.Errorf("GPT partition %d (LBAs %d-%d) lies outside the usable LBAs %d-%d",
					i+1, first, last, h.firstUsableLBA, h.lastUsableLBA)
			}
			// Erasing: keep what lies on the disk.
			if first > last || first >= uint64(sectors) {
				continue
			}
			last = min(last, uint64(sectors)-1)
		}
		parts = append(parts, Partition{
			Number: i + 1,
			Start:  int64(first) * ss,
			Size:   int64(last-first+1) * ss,
			Type:   formatGUID(entry[0:16]),
			GUID:   formatGUID(entry[16:32]),
			Name:   decodeGPTName(entry[gptEntryNameOffset : gptEntryNameOffset+2*gptEntryNameCodeUnit]),
		})
	}
	if err := checkOverlaps(parts); err != nil && strict {
		return nil, err
	}
	return parts, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// formatGUID renders GPT's mixed-endian GUIDs as blkid does.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func decodeGPTName(b []byte) string {
	units := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	return string(utf16.Decode(units))
}

// checkOverlaps reports the first two partitions sharing space. Extended
// MBR partitions contain their logical ones and are left out.
func checkOverlaps(parts []Partition) error {
	sorted := make([]Partition, 0, len(parts))
	for _, p := range parts {
		if !p.Extended {
			sorted = append(sorted, p)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Start < sorted[j].Start })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Start < sorted[i-1].End() {
			return fmt.Errorf("partitions %d and %d overlap", sorted[i-1].Number, sorted[i].Number)
		}
	}
	return nil
}

type mbrTable struct {
	sector []byte // sector 0 as read
	// ebrs are the LBAs of the extended boot records of logical partitions.
	ebrs []int64
}

func isExtendedType(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

type mbrEntry struct {
	status byte
	kind   byte
	start  uint32
	count  uint32
}

func readMBREntry(sector []byte, i int) mbrEntry {
	e := sector[mbrPartitionsOffset+i*mbrEntrySize:]
	return mbrEntry{
		status: e[0],
		kind:   e[4],
		start:  binary.LittleEndian.Uint32(e[8:]),
		count:  binary.LittleEndian.Uint32(e[12:]),
	}
}

func parseMBR(r io.ReaderAt, sector []byte, size, ss int64, strict bool) (*PartitionTable, error) {
	table := &PartitionTable{
		Type:       "dos",
		SectorSize: ss,
		ID:         fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(sector[440:])),
		mbr:        &mbrTable{sector: append([]byte(nil), sector...)},
	}
	for i := 0; i < 4; i++ {
		e := readMBREntry(sector, i)
		if e.count == 0 {
			// The kernel and libblkid skip empty entries whatever their type.
			continue
		}
		p := Partition{
			Number:   i + 1,
			Start:    int64(e.start) * ss,
			Size:     int64(e.count) * ss,
			Type:     fmt.Sprintf("0x%02x", e.kind),
			Extended: isExtendedType(e.kind),
		}
		if e.start == 0 || p.End() > size {
			if strict {
				return nil, fmt.Errorf("MBR partition %d (sectors %d-%d) lies outside a disk of %d sectors",
					p.Number, e.start, uint64(e.start)+uint64(e.count)-1, size/ss)
			}
			// Erasing: keep what lies on the disk.
			if e.start == 0 || p.Start >= size {
				continue
			}
			p.Size = size - p.Start
		}
		table.Partitions = append(table.Partitions, p)
		if p.Extended {
			logical, err := parseLogicalPartitions(r, table.mbr, p, ss, strict)
			if err != nil {
				return nil, err
			}
			table.Partitions = append(table.Partitions, logical...)
		}
	}
	if err := checkOverlaps(table.Partitions); err != nil && strict {
		return nil, err
	}
	sort.SliceStable(table.Partitions, func(i, j int) bool { return table.Partitions[i].Number < table.Partitions[j].Number })
	return table, nil
}

// parseLogicalPartitions follows the chain of extended boot records, each
// holding one logical partition (relative to the EBR) and a link to the
// next EBR (relative to the extended partition).
func parseLogicalPartitions(r io.ReaderAt, mbr *mbrTable, extended Partition, ss int64, strict bool) ([]Partition, error) {
	var logical []Partition
	base := extended.Start / ss
	visited := map[int64]bool{}
	ebr := base
	sector := make([]byte, 512)
	for number := 5; ; {
		if visited[ebr] || len(visited) >= maxLogicalEntries {
			if strict {
				return nil, fmt.Errorf("the chain of logical partitions in extended partition %d loops or is longer than %d",
					extended.Number, maxLogicalEntries)
			}
			return logical, nil
		}
		visited[ebr] = true
		if ebr*ss < extended.Start || (ebr+1)*ss > extended.End() {
			if strict {
				return nil, fmt.Errorf("an extended boot record at sector %d lies outside extended partition %d", ebr, extended.Number)
			}
			return logical, nil
		}
		if err := readFull(r, sector, ebr*ss); err != nil {
			return nil, fmt.Errorf("reading the extended boot record at sector %d: %w", ebr, err)
		}
		if sector[mbrSignatureOffset] != 0x55 || sector[mbrSignatureOffset+1] != 0xaa {
			// The kernel ends the chain at the first sector without the
			// signature; so does a freshly created empty extended partition.
			return logical, nil
		}
		mbr.ebrs = append(mbr.ebrs, ebr)
		next := int64(-1)
		for i := 0; i < 4; i++ {
			e := readMBREntry(sector, i)
			if e.count == 0 {
				continue
			}
			if isExtendedType(e.kind) {
				if next < 0 {
					next = base + int64(e.start)
				}
				continue
			}
			p := Partition{
				Number: number,
				Start:  (ebr + int64(e.start)) * ss,
				Size:   int64(e.count) * ss,
				Type:   fmt.Sprintf("0x%02x", e.kind),
			}
			if e.start == 0 || p.Start < extended.Start || p.End() > extended.End() {
				if strict {
					return nil, fmt.Errorf("logical partition %d (sectors %d-%d) lies outside extended partition %d",
						number, p.Start/ss, p.End()/ss-1, extended.Number)
				}
				continue
			}
			logical = append(logical, p)
			number++
		}
		if next < 0 {
			return logical, nil
		}
		ebr = next
	}
}

// PartitionDevice is the kernel's name for partition n of the disk named
// name: sda1, but nvme0n1p1 where the disk name ends in a digit.
func PartitionDevice(name string, n int) string {
	if name != "" && name[len(name)-1] >= '0' && name[len(name)-1] <= '9' {
		return fmt.Sprintf("%sp%d", name, n)
	}
	return fmt.Sprintf("%s%d", name, n)
}
