package imagewrite

import (
	"bytes"
	"fmt"
	"strings"
)

// magics of formats written as they are decoded.
var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicQcow  = []byte("QFI\xfb")
)

// refusedMagics are formats that written as raw would give a disk that
// cannot boot, and that this package does not convert.
var refusedMagics = []struct {
	offset int
	magic  []byte
	name   string
}{
	{0, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, "xz-compressed (use zstd or gzip)"},
	{0, []byte("KDMV"), "vmdk"},
	{0, []byte("# Disk DescriptorFile"), "vmdk"},
	{0, []byte("vhdxfile"), "vhdx"},
	{0, []byte("conectix"), "vhd"},
	{0x40, []byte{0x7f, 0x10, 0xda, 0xbe}, "vdi"},
	{0, []byte("LUKS\xba\xbe"), "LUKS"},
}

// isoMagic is ISO 9660's primary volume descriptor signature.
var isoMagic = []byte("CD001")

const isoMagicOffset = 0x8001

// detect tells an image's format from its first bytes. hint is the
// image's disk_format, which matters only for ISO images.
func detect(head []byte, hint string) (Format, error) {
	if len(head) == 0 {
		return "", fmt.Errorf("%w: the image is empty", ErrUnsupportedImage)
	}
	switch {
	case bytes.HasPrefix(head, magicQcow):
		if len(head) < 8 || head[4] != 0 || head[5] != 0 || head[6] != 0 || (head[7] != 2 && head[7] != 3) {
			return "", fmt.Errorf("%w: qcow image of a version other than 2 or 3", ErrUnsupportedImage)
		}
		return FormatQcow2, nil
	case bytes.HasPrefix(head, magicGzip):
		return FormatGzip, nil
	case bytes.HasPrefix(head, magicZstd) || isZstdSkippable(head):
		return FormatZstd, nil
	case isBzip2(head):
		return FormatBzip2, nil
	}
	if err := refuse(head, hint); err != nil {
		return "", err
	}
	return FormatRaw, nil
}

// detectInner checks what a compressed stream holds: raw data only.
func detectInner(outer Format, head []byte, hint string) error {
	if len(head) == 0 {
		return fmt.Errorf("%w: the %s stream is empty", ErrUnsupportedImage, outer)
	}
	if bytes.HasPrefix(head, magicQcow) {
		return fmt.Errorf("%w: a qcow2 image inside a %s stream cannot be converted while streaming: serve the qcow2 file itself (its clusters may be compressed) or a compressed raw image",
			ErrUnsupportedImage, outer)
	}
	return refuse(head, hint)
}

func refuse(head []byte, hint string) error {
	for _, m := range refusedMagics {
		if len(head) >= m.offset+len(m.magic) && bytes.Equal(head[m.offset:m.offset+len(m.magic)], m.magic) {
			return fmt.Errorf("%w: %s images are not supported (convert to raw or qcow2)", ErrUnsupportedImage, m.name)
		}
	}
	if len(head) >= isoMagicOffset+len(isoMagic) && bytes.Equal(head[isoMagicOffset:isoMagicOffset+len(isoMagic)], isoMagic) {
		if h := strings.ToLower(hint); h != "raw" && h != "gpt" {
			return fmt.Errorf("%w: an ISO 9660 image is written to a disk only when its disk_format is raw (it is %q)", ErrUnsupportedImage, hint)
		}
	}
	return nil
}

// isZstdSkippable matches a zstd skippable frame (0x184D2A50-5F), which
// pzstd puts first.
func isZstdSkippable(head []byte) bool {
	return len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18
}

// isBzip2 matches "BZh", a block size digit and the first block's magic.
func isBzip2(head []byte) bool {
	return len(head) >= 10 && bytes.HasPrefix(head, magicBzip2) && head[3] >= '1' && head[3] <= '9' &&
		bytes.Equal(head[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59})
}
