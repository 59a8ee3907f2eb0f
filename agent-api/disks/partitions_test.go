package disks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// memDisk is an in-memory disk that fails, rather than grows, on access
// past its end.
type memDisk struct{ data []byte }

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m.data)) || int64(len(p)) > int64(len(m.data))-off {
		return 0, fmt.Errorf("read of %d bytes at %d outside a %d-byte disk", len(p), off, len(m.data))
	}
	return copy(p, m.data[off:]), nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m.data)) || int64(len(p)) > int64(len(m.data))-off {
		return 0, fmt.Errorf("write of %d bytes at %d outside a %d-byte disk", len(p), off, len(m.data))
	}
	return copy(m.data[off:], p), nil
}

// testPart describes a partition for the table builders, in sectors.
type testPart struct {
	first, last int64
	name        string
	kind        byte // MBR type
}

var testTypeGUID = [16]byte{0xa2, 0xa0, 0xd0, 0xeb, 0xe5, 0xb9, 0x33, 0x44, 0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7}

// writeTestGPT writes a protective MBR and both GPT copies for a disk of
// sectors sectors of ss bytes, with 128 entries of 128 bytes; the backup
// goes at backupLBA (the last sector unless the image is smaller than the
// disk).
func writeTestGPT(disk []byte, ss int64, backupLBA int64, parts []testPart) {
	const entryCount, entrySize = 128, 128
	entries := make([]byte, entryCount*entrySize)
	for i, p := range parts {
		e := entries[i*entrySize:]
		copy(e[0:16], testTypeGUID[:])
		for j := 16; j < 32; j++ {
			e[j] = byte(i*16 + j)
		}
		binary.LittleEndian.PutUint64(e[32:], uint64(p.first))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.last))
		binary.LittleEndian.PutUint64(e[48:], 1<<60|uint64(i)) // attributes must survive
		for j, u := range utf16.Encode([]rune(p.name)) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	entrySectors := int64(len(entries)) / ss
	header := func(my, alternate, entriesLBA int64) []byte {
		h := make([]byte, 92)
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(my))
		binary.LittleEndian.PutUint64(h[32:], uint64(alternate))
		binary.LittleEndian.PutUint64(h[40:], uint64(2+entrySectors))
		binary.LittleEndian.PutUint64(h[48:], uint64(backupLBA-entrySectors-1))
		copy(h[56:72], "0123456789abcdef")
		binary.LittleEndian.PutUint64(h[72:], uint64(entriesLBA))
		binary.LittleEndian.PutUint32(h[80:], entryCount)
		binary.LittleEndian.PutUint32(h[84:], entrySize)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	copy(disk[2*ss:], entries)
	copy(disk[ss:], header(1, backupLBA, 2))
	copy(disk[(backupLBA-entrySectors)*ss:], entries)
	copy(disk[backupLBA*ss:], header(backupLBA, 1, backupLBA-entrySectors))
	writeTestMBR(disk, []testPart{{first: 1, last: min(backupLBA, 1<<32-1), kind: mbrProtectiveType}})
}

// writeTestMBR writes sector 0 with up to four primary entries.
func writeTestMBR(disk []byte, parts []testPart) {
	for i, p := range parts {
		e := disk[mbrPartitionsOffset+i*mbrEntrySize:]
		e[4] = p.kind
		binary.LittleEndian.PutUint32(e[8:], uint32(p.first))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.last-p.first+1))
	}
	binary.LittleEndian.PutUint32(disk[440:], 0xdeadbeef)
	disk[510], disk[511] = 0x55, 0xaa
}

// writeTestEBR writes an extended boot record at sector ebr: a logical
// partition relative to it and a link relative to the extended partition.
func writeTestEBR(disk []byte, ebr int64, logical testPart, next testPart) {
	sector := disk[ebr*512 : ebr*512+512]
	e := sector[mbrPartitionsOffset:]
	e[4] = logical.kind
	binary.LittleEndian.PutUint32(e[8:], uint32(logical.first))
	binary.LittleEndian.PutUint32(e[12:], uint32(logical.last-logical.first+1))
	if next.kind != 0 {
		e = sector[mbrPartitionsOffset+mbrEntrySize:]
		e[4] = next.kind
		binary.LittleEndian.PutUint32(e[8:], uint32(next.first))
		binary.LittleEndian.PutUint32(e[12:], uint32(next.last-next.first+1))
	}
	sector[510], sector[511] = 0x55, 0xaa
}

func rewriteGPTHeaderCRC(disk []byte, off int64) {
	h := disk[off : off+92]
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
}

func newTestGPTDisk(sectors int64, parts []testPart) []byte {
	disk := make([]byte, sectors*512)
	writeTestGPT(disk, 512, sectors-1, parts)
	return disk
}

func TestParsePartitionsGPTBuiltInGo(t *testing.T) {
	disk := newTestGPTDisk(4096, []testPart{{first: 34, last: 1000, name: "root"}, {first: 2000, last: 3000, name: "épée"}})
	table, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if table.Type != "gpt" || table.SectorSize != 512 || table.ID != "33323130-3534-3736-3839-616263646566" {
		t.Fatalf("table = %+v", table)
	}
	want := []Partition{
		{Number: 1, Start: 34 * 512, Size: 967 * 512, Type: "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
			GUID: "13121110-1514-1716-1819-1a1b1c1d1e1f", Name: "root"},
		{Number: 2, Start: 2000 * 512, Size: 1001 * 512, Type: "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
			GUID: "23222120-2524-2726-2829-2a2b2c2d2e2f", Name: "épée"},
	}
	if fmt.Sprint(table.Partitions) != fmt.Sprint(want) {
		t.Errorf("partitions\n got %+v\nwant %+v", table.Partitions, want)
	}
}

func TestParsePartitionsHostile(t *testing.T) {
	const sectors = 4096
	valid := func() []byte {
		return newTestGPTDisk(sectors, []testPart{{first: 34, last: 1000}, {first: 2000, last: 3000}})
	}
	entry := func(disk []byte, i int) []byte { return disk[2*512+i*128:] }
	fixEntriesCRC := func(disk []byte) {
		binary.LittleEndian.PutUint32(disk[512+88:], crc32.ChecksumIEEE(disk[1024:1024+128*128]))
		rewriteGPTHeaderCRC(disk, 512)
	}
	breakBackup := func(disk []byte) { disk[(sectors-1)*512] ^= 0xff }

	tests := []struct {
		name   string
		mutate func([]byte)
		want   string
	}{
		{"partition beyond usable area", func(d []byte) {
			binary.LittleEndian.PutUint64(entry(d, 1)[40:], sectors+5)
			fixEntriesCRC(d)
		}, "outside the usable LBAs"},
		{"partition before usable area", func(d []byte) {
			binary.LittleEndian.PutUint64(entry(d, 0)[32:], 1)
			fixEntriesCRC(d)
		}, "outside the usable LBAs"},
		{"first after last", func(d []byte) {
			binary.LittleEndian.PutUint64(entry(d, 0)[32:], 900)
			binary.LittleEndian.PutUint64(entry(d, 0)[40:], 800)
			fixEntriesCRC(d)
		}, "outside the usable LBAs"},
		{"overlap", func(d []byte) {
			binary.LittleEndian.PutUint64(entry(d, 1)[32:], 999)
			fixEntriesCRC(d)
		}, "overlap"},
		{"huge entry count", func(d []byte) {
			binary.LittleEndian.PutUint32(d[512+80:], 1<<31)
			rewriteGPTHeaderCRC(d, 512)
			breakBackup(d)
		}, "more than the"},
		{"odd entry size", func(d []byte) {
			binary.LittleEndian.PutUint32(d[512+84:], 200)
			rewriteGPTHeaderCRC(d, 512)
			breakBackup(d)
		}, "invalid entry size"},
		{"entries beyond disk", func(d []byte) {
			binary.LittleEndian.PutUint64(d[512+72:], sectors-2)
			rewriteGPTHeaderCRC(d, 512)
			breakBackup(d)
		}, "outside the disk"},
		{"entries inside usable area", func(d []byte) {
			binary.LittleEndian.PutUint64(d[512+72:], 100)
			rewriteGPTHeaderCRC(d, 512)
			breakBackup(d)
		}, "outside the disk's free area"},
		{"last usable beyond disk", func(d []byte) {
			binary.LittleEndian.PutUint64(d[512+48:], sectors*2)
			rewriteGPTHeaderCRC(d, 512)
			breakBackup(d)
		}, "usable LBAs"},
		{"header size beyond sector", func(d []byte) {
			binary.LittleEndian.PutUint32(d[512+12:], 4096)
			rewriteGPTHeaderCRC(d, 512)
			breakBackup(d)
		}, "invalid size"},
		{"bad header CRC, bad backup", func(d []byte) {
			d[512+100] = 1
			d[512+16] ^= 1
			breakBackup(d)
		}, "bad checksum"},
		{"bad entries CRC, bad backup", func(d []byte) {
			entry(d, 5)[0] = 1
			breakBackup(d)
		}, "bad checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := valid()
			tt.mutate(disk)
			_, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			// Erasing reads the same table without failing and stays on the disk.
			for _, s := range metadataSpans(&memDisk{disk}, int64(len(disk)), 512, false) {
				if s.start < 0 || s.end > int64(len(disk)) || s.start >= s.end {
					t.Fatalf("span %+v outside the disk", s)
				}
			}
		})
	}

	t.Run("damaged primary falls back to the backup", func(t *testing.T) {
		disk := valid()
		disk[512+16] ^= 1
		table, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 0)
		if err != nil || len(table.Partitions) != 2 || !table.gpt.fromBackup {
			t.Fatalf("got %+v, %v; want the backup's two partitions", table, err)
		}
	})
}

func TestParsePartitionsMBRBuiltInGo(t *testing.T) {
	disk := make([]byte, 8192*512)
	writeTestMBR(disk, []testPart{
		{first: 2048, last: 4095, kind: 0x83},
		{first: 4096, last: 8191, kind: 0x05},
	})
	writeTestEBR(disk, 4096, testPart{first: 2, last: 1000, kind: 0x83}, testPart{first: 1024, last: 2047, kind: 0x05})
	writeTestEBR(disk, 4096+1024, testPart{first: 2, last: 1000, kind: 0x82}, testPart{})
	table, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Number: 1, Start: 2048 * 512, Size: 2048 * 512, Type: "0x83"},
		{Number: 2, Start: 4096 * 512, Size: 4096 * 512, Type: "0x05", Extended: true},
		{Number: 5, Start: 4098 * 512, Size: 999 * 512, Type: "0x83"},
		{Number: 6, Start: (4096 + 1024 + 2) * 512, Size: 999 * 512, Type: "0x82"},
	}
	if table.Type != "dos" || table.ID != "0xdeadbeef" || fmt.Sprint(table.Partitions) != fmt.Sprint(want) {
		t.Errorf("got %s %s %+v\nwant %+v", table.Type, table.ID, table.Partitions, want)
	}

	t.Run("EBR loop", func(t *testing.T) {
		loop := append([]byte(nil), disk...)
		writeTestEBR(loop, 4096+1024, testPart{first: 2, last: 1000, kind: 0x82}, testPart{first: 0, last: 1023, kind: 0x05})
		if _, err := ParsePartitions(&memDisk{loop}, int64(len(loop)), 0); err == nil || !strings.Contains(err.Error(), "loops") {
			t.Errorf("got %v, want a loop error", err)
		}
		table, err := parsePartitions(&memDisk{loop}, int64(len(loop)), 0, false)
		if err != nil || len(table.Partitions) != 4 {
			t.Errorf("lenient: got %+v, %v; want the four partitions before the loop", table, err)
		}
	})
	t.Run("partition beyond disk", func(t *testing.T) {
		beyond := append([]byte(nil), disk...)
		writeTestMBR(beyond, []testPart{{first: 2048, last: 9000, kind: 0x83}})
		if _, err := ParsePartitions(&memDisk{beyond}, int64(len(beyond)), 0); err == nil || !strings.Contains(err.Error(), "outside a disk") {
			t.Errorf("got %v", err)
		}
		table, err := parsePartitions(&memDisk{beyond}, int64(len(beyond)), 0, false)
		if err != nil || table.Partitions[0].End() != int64(len(beyond)) {
			t.Errorf("lenient: got %+v, %v; want the partition cut at the end of the disk", table, err)
		}
	})
	t.Run("logical partition outside extended", func(t *testing.T) {
		outside := append([]byte(nil), disk...)
		writeTestEBR(outside, 4096, testPart{first: 2, last: 5000, kind: 0x83}, testPart{})
		if _, err := ParsePartitions(&memDisk{outside}, int64(len(outside)), 0); err == nil || !strings.Contains(err.Error(), "outside extended") {
			t.Errorf("got %v", err)
		}
	})
}

func TestParsePartitionsNoTable(t *testing.T) {
	fat := make([]byte, 1<<20)
	fat[0], fat[1], fat[2] = 0xeb, 0x3c, 0x90
	binary.LittleEndian.PutUint16(fat[11:], 512)
	fat[13], fat[16] = 4, 2
	copy(fat[54:], "FAT16   ")
	fat[510], fat[511] = 0x55, 0xaa
	ntfs := make([]byte, 1<<20)
	copy(ntfs[3:], "NTFS    ")
	ntfs[510], ntfs[511] = 0x55, 0xaa
	badFlags := make([]byte, 1<<20)
	badFlags[mbrPartitionsOffset] = 0x12
	badFlags[510], badFlags[511] = 0x55, 0xaa
	for name, disk := range map[string][]byte{
		"zeros":           make([]byte, 1<<20),
		"tiny":            make([]byte, 100),
		"FAT boot sector": fat,
		"NTFS":            ntfs,
		"bad boot flags":  badFlags,
	} {
		if _, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 0); !errors.Is(err, ErrNoPartitionTable) {
			t.Errorf("%s: got %v, want ErrNoPartitionTable", name, err)
		}
	}
}

// sfdiskTable is what sfdisk --json reports.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdiskJSON(t *testing.T, path string) sfdiskTable {
	t.Helper()
	var table sfdiskTable
	out := run(t, "", "sfdisk", "--json", path)
	if err := json.Unmarshal([]byte(out), &table); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return table
}

// partitionNumber is the number at the end of sfdisk's node name.
func partitionNumber(node string) int {
	n := 0
	fmt.Sscanf(node[strings.LastIndexAny(node, "abcdefghijklmnopqrstuvwxyz.")+1:], "%d", &n)
	return n
}

// checkAgainstSfdisk compares ParsePartitions with sfdisk's reading.
func checkAgainstSfdisk(t *testing.T, path string, sectorSize int64) *PartitionTable {
	t.Helper()
	want := sfdiskJSON(t, path)
	table, err := ReadPartitions(Disk{Name: "/dev/sdx", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if table.Type != want.PartitionTable.Label || table.SectorSize != sectorSize {
		t.Fatalf("table %s with %d-byte sectors, sfdisk says %s with %d", table.Type, table.SectorSize,
			want.PartitionTable.Label, want.PartitionTable.SectorSize)
	}
	if !strings.EqualFold(table.ID, want.PartitionTable.ID) {
		t.Errorf("ID %s, sfdisk says %s", table.ID, want.PartitionTable.ID)
	}
	if len(table.Partitions) != len(want.PartitionTable.Partitions) {
		t.Fatalf("%d partitions, sfdisk lists %d", len(table.Partitions), len(want.PartitionTable.Partitions))
	}
	for i, p := range table.Partitions {
		w := want.PartitionTable.Partitions[i]
		wantType := w.Type
		if table.Type == "dos" {
			n, _ := strconv.ParseUint(w.Type, 16, 8)
			wantType = fmt.Sprintf("0x%02x", n)
		}
		if p.Number != partitionNumber(w.Node) || p.Start != w.Start*sectorSize || p.Size != w.Size*sectorSize ||
			!strings.EqualFold(p.Type, wantType) || !strings.EqualFold(p.GUID, w.UUID) || p.Name != w.Name {
			t.Errorf("partition %+v, sfdisk says %+v", p, w)
		}
	}
	return table
}

func TestParsePartitionsMatchesSfdisk(t *testing.T) {
	requireTool(t, "sfdisk")
	t.Run("gpt", func(t *testing.T) {
		path := diskFile(t, 64<<20)
		run(t, "label: gpt\nsize=8M, type=L, name=boot\nsize=16M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=\"lvm data\"\nsize=4M, type=S\n",
			"sfdisk", "-q", path)
		checkAgainstSfdisk(t, path, 512)
	})
	t.Run("dos with logical partitions", func(t *testing.T) {
		path := diskFile(t, 64<<20)
		run(t, "label: dos\n,8M,83\n,8M,82\n,30M,5\n,4M,83\n,4M,7\n,4M,c\n", "sfdisk", "-q", path)
		table := checkAgainstSfdisk(t, path, 512)
		if len(table.Partitions) != 6 || !table.Partitions[2].Extended || table.Partitions[5].Number != 6 {
			t.Errorf("want primaries 1-4 (3 extended) and logical 5-6, got %+v", table.Partitions)
		}
	})
}

func TestParsePartitionsGPT4096(t *testing.T) {
	disk := make([]byte, 4096*4096)
	writeTestGPT(disk, 4096, 4095, []testPart{{first: 6, last: 100, name: "x"}})
	table, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 0)
	if err != nil || table.SectorSize != 4096 || len(table.Partitions) != 1 || table.Partitions[0].Start != 6*4096 {
		t.Fatalf("got %+v, %v; want one partition at 24 KiB in 4096-byte sectors", table, err)
	}
	// The same disk read as 512-byte sectors has no GPT where it looks.
	if _, err := ParsePartitions(&memDisk{disk}, int64(len(disk)), 512); err == nil {
		t.Errorf("a 4096-byte-sector GPT parsed with 512-byte sectors")
	}
}

// FuzzParsePartitions feeds arbitrary bytes to the parser as a disk
// (extended with zero sectors), and where a table is accepted adds a
// configdrive partition to it: nothing may panic, loop, read or write outside
// the disk, and the existing partitions must come back unchanged.
func FuzzParsePartitions(f *testing.F) {
	gpt := newTestGPTDisk(256, []testPart{{first: 34, last: 60, name: "a"}, {first: 100, last: 120, name: "b"}})
	f.Add(gpt, uint16(0))
	f.Add(gpt[:200*512], uint16(56))   // image smaller than the disk: backup GPT inside it
	f.Add(gpt[:256*512], uint16(4000)) // much larger disk
	mbr := make([]byte, 64*512)
	writeTestMBR(mbr, []testPart{{first: 2, last: 9, kind: 0x83}, {first: 10, last: 40, kind: 0x0f}})
	writeTestEBR(mbr, 10, testPart{first: 1, last: 5, kind: 0x83}, testPart{first: 8, last: 20, kind: 0x05})
	writeTestEBR(mbr, 18, testPart{first: 1, last: 3, kind: 0x83}, testPart{})
	f.Add(mbr, uint16(4000))
	f.Add(mbr[:512], uint16(0))
	f.Add([]byte{}, uint16(10))

	image := make([]byte, 4096)
	copy(image, "configdrive")
	f.Fuzz(func(t *testing.T, data []byte, extraSectors uint16) {
		// Up to 2 MiB more than the data: enough to move a backup GPT,
		// small enough to keep the fuzzer fast.
		size := int64(len(data)) + int64(extraSectors%4096)*512
		size -= size % 512
		disk := make([]byte, size)
		copy(disk, data)

		for _, strict := range []bool{true, false} {
			table, err := parsePartitions(&memDisk{disk}, size, 0, strict)
			if err != nil {
				continue
			}
			for _, p := range table.Partitions {
				if p.Start <= 0 || p.Size <= 0 || p.End() > size {
					t.Fatalf("strict=%v: partition %+v outside a %d-byte disk", strict, p, size)
				}
			}
			if strict && checkOverlaps(table.Partitions) != nil {
				t.Fatalf("strict parse accepted overlapping partitions %+v", table.Partitions)
			}
		}
		for _, s := range metadataSpans(&memDisk{disk}, size, 0, true) {
			if s.start < 0 || s.end > size || s.start >= s.end {
				t.Fatalf("erase span %+v outside a %d-byte disk", s, size)
			}
		}

		before, err := ParsePartitions(&memDisk{disk}, size, 0)
		if err != nil {
			return
		}
		written := append([]byte(nil), disk...)
		part, err := writeConfigDrive(t.Context(), &memDisk{written}, size, 0, image)
		if err != nil {
			return
		}
		after, err := ParsePartitions(&memDisk{written}, size, 0)
		if err != nil {
			t.Fatalf("table unreadable after adding the configdrive: %v", err)
		}
		if after.ID != before.ID {
			t.Fatalf("disk ID changed from %s to %s", before.ID, after.ID)
		}
		kept := 0
		for _, p := range after.Partitions {
			if p.Number == part.Number && part.Created {
				if p.Start != part.Start || p.Size != part.Size {
					t.Fatalf("new partition %+v, reported %+v", p, part)
				}
				continue
			}
			if kept >= len(before.Partitions) || fmt.Sprint(p) != fmt.Sprint(before.Partitions[kept]) {
				t.Fatalf("partitions changed:\nbefore %+v\nafter  %+v", before.Partitions, after.Partitions)
			}
			kept++
		}
		if kept != len(before.Partitions) {
			t.Fatalf("partitions lost:\nbefore %+v\nafter  %+v", before.Partitions, after.Partitions)
		}
		if !bytes.Equal(written[part.Start:part.Start+int64(len(image))], image) {
			t.Fatalf("image not at the start of partition %d", part.Number)
		}
		// Nothing is written into the other partitions.
		for _, p := range before.Partitions {
			if p.Number != part.Number && !bytes.Equal(disk[p.Start:p.End()], written[p.Start:p.End()]) {
				t.Fatalf("partition %d's contents changed", p.Number)
			}
		}
	})
}
