package disks

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
)

// The filesystem labels lsblk would show, for the filesystems a
// configdrive partition can hold: IPA finds an existing configdrive
// partition by its label.

const (
	isoPVDOffset     = 32768
	extSuperblockOff = 1024
	labelHeadSize    = 2048 // holds a FAT boot sector and an ext superblock
)

// isoLabel is the volume identifier of an ISO9660 primary volume
// descriptor, the 2 KiB at isoPVDOffset.
func isoLabel(pvd []byte) (string, bool) {
	if len(pvd) < 72 || pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return "", false
	}
	return strings.TrimRight(string(pvd[40:72]), " \x00"), true
}

// fatLabel is the volume label of a FAT boot sector. nil means the data
// does not start with one.
func fatLabel(head []byte) []byte {
	if len(head) < 512 || head[510] != 0x55 || head[511] != 0xaa {
		return nil
	}
	if head[0] != 0xeb && head[0] != 0xe9 {
		return nil
	}
	bytesPerSector := binary.LittleEndian.Uint16(head[11:])
	sectorsPerCluster := head[13]
	if bytesPerSector < 512 || bytesPerSector > 4096 || bytesPerSector&(bytesPerSector-1) != 0 ||
		sectorsPerCluster == 0 || sectorsPerCluster&(sectorsPerCluster-1) != 0 || head[16] == 0 {
		return nil
	}
	switch {
	case bytes.HasPrefix(head[82:], []byte("FAT32")) && head[66] == 0x29:
		return bytes.TrimRight(head[71:82], " \x00")
	case bytes.HasPrefix(head[54:], []byte("FAT1")) && head[38] == 0x29:
		return bytes.TrimRight(head[43:54], " \x00")
	}
	return nil
}

// extLabel is the volume name of an ext2/3/4 superblock.
func extLabel(head []byte) (string, bool) {
	if len(head) < extSuperblockOff+136 {
		return "", false
	}
	sb := head[extSuperblockOff:]
	if binary.LittleEndian.Uint16(sb[56:]) != 0xef53 {
		return "", false
	}
	return strings.TrimRight(string(sb[120:136]), "\x00"), true
}

// filesystemLabel reads the label of the filesystem at off, if it is one
// of those above. Two small reads, as a table may list many partitions.
func filesystemLabel(r io.ReaderAt, off, size int64) string {
	if size >= isoPVDOffset+2048 {
		pvd := make([]byte, 2048)
		if readFull(r, pvd, off+isoPVDOffset) == nil {
			if label, ok := isoLabel(pvd); ok {
				return label
			}
		}
	}
	head := make([]byte, min(size, labelHeadSize))
	if readFull(r, head, off) != nil {
		return ""
	}
	if label := fatLabel(head); label != nil {
		return string(label)
	}
	if label, ok := extLabel(head); ok {
		return label
	}
	return ""
}
