package hwinventory

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// unitSerialNumber reads VPD page 0x80 (the kernel's vpd_pg80: a 4-byte
// header, then the serial number, which libata fills with the ATA serial)
// and cleans it as scsi_id and ata_id do for ID_SCSI_SERIAL and
// ID_SERIAL_SHORT, the values lsblk and IPA report.
func unitSerialNumber(page []byte) string {
	if len(page) < 4 || page[1] != 0x80 {
		return ""
	}
	n := min(int(binary.BigEndian.Uint16(page[2:4])), len(page)-4)
	return udevSafe(page[4 : 4+n])
}

// udevSafe is udev's replace_whitespace then replace_chars: no leading or
// trailing white space, each inner run of it one '_', and bytes outside
// udev's allowed set (and invalid UTF-8) '_' too. A NUL ends the string.
func udevSafe(raw []byte) string {
	if i := strings.IndexByte(string(raw), 0); i >= 0 {
		raw = raw[:i]
	}
	fields := strings.Fields(string(raw))
	s := strings.Join(fields, "_")
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteByte('_')
		case r >= utf8.RuneSelf, udevAllowed(byte(r)):
			b.WriteString(s[:size])
		default:
			b.WriteByte('_')
		}
		s = s[size:]
	}
	return b.String()
}

func udevAllowed(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("#+-.:=@_", c) >= 0
}

// deviceIdentifiers is what VPD page 0x83 (device identification) says.
type deviceIdentifiers struct {
	wwn, wwnVendorExtension string // "0x5000c500a1b2c3d4", "0x..." or ""
	ataModel                string // the full ATA model, from SAT's T10 designator
}

// Designator fields of VPD page 0x83 (SPC-4 7.8.6).
const (
	codeSetBinary   = 1
	codeSetASCII    = 2
	designatorT10   = 1
	designatorNAA   = 3
	naaIEEEReg      = 5 // 8 bytes
	naaIEEERegExt   = 6 // 16 bytes: the last 8 are the vendor extension
	associationMask = 0x30
)

type designator struct {
	codeSet, association, kind int
	data                       []byte
}

// parseVPD83 picks the WWN as scsi_id does for ID_WWN: the first NAA
// designator of the logical unit, registered-extended before registered
// before any other NAA type, binary before ASCII. libata's translation
// carries the ATA WWN as an NAA designator, which ata_id reads from the
// same IDENTIFY words.
func parseVPD83(page []byte) deviceIdentifiers {
	var ids deviceIdentifiers
	if len(page) < 4 || page[1] != 0x83 {
		return ids
	}
	end := min(4+int(binary.BigEndian.Uint16(page[2:4])), len(page))
	var found []designator
	for i := 4; i+4 <= end; {
		n := int(page[i+3])
		if i+4+n > end {
			break
		}
		found = append(found, designator{
			codeSet:     int(page[i] & 0x0f),
			association: int(page[i+1]&associationMask) >> 4,
			kind:        int(page[i+1] & 0x0f),
			data:        page[i+4 : i+4+n],
		})
		i += 4 + n
	}
	for _, d := range found {
		if d.association == 0 && d.kind == designatorT10 && d.codeSet == codeSetASCII &&
			len(d.data) >= 48 && string(d.data[:8]) == "ATA     " {
			ids.ataModel = strings.TrimSpace(string(d.data[8:48]))
		}
	}
	for _, want := range []struct{ naa, codeSet int }{
		{naaIEEERegExt, codeSetBinary}, {naaIEEERegExt, codeSetASCII},
		{naaIEEEReg, codeSetBinary}, {naaIEEEReg, codeSetASCII},
		{-1, codeSetBinary}, {-1, codeSetASCII},
	} {
		for _, d := range found {
			if d.association != 0 || d.kind != designatorNAA || d.codeSet != want.codeSet || len(d.data) == 0 {
				continue
			}
			if want.naa >= 0 && int(d.data[0]>>4) != want.naa {
				continue
			}
			digits := string(d.data)
			if d.codeSet == codeSetBinary {
				digits = hex.EncodeToString(d.data)
			}
			ids.wwn, ids.wwnVendorExtension = splitWWN(digits)
			return ids
		}
	}
	return ids
}

// splitWWN turns an NAA designator's hex digits into ID_WWN and
// ID_WWN_VENDOR_EXTENSION: the first 16 digits and the next 16.
func splitWWN(digits string) (wwn, extension string) {
	digits = strings.ToLower(digits)
	if len(digits) <= 16 {
		return "0x" + digits, ""
	}
	rest := digits[16:min(len(digits), 32)]
	return "0x" + digits[:16], "0x" + rest
}

// wwidToWWN reads the kernel's wwid attribute of a SCSI device
// ("naa.5000c500a1b2c3d4"): only an NAA name is a WWN.
func wwidToWWN(wwid string) (wwn, extension string) {
	digits, ok := strings.CutPrefix(wwid, "naa.")
	if !ok || (len(digits) != 16 && len(digits) != 32) {
		return "", ""
	}
	if _, err := hex.DecodeString(digits); err != nil {
		return "", ""
	}
	return splitWWN(digits)
}
