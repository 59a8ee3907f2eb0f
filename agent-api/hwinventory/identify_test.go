package hwinventory

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUdevSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"     WD-WCC4N1234567":     "WD-WCC4N1234567",
		"PHYF912300AB480BGN  ":     "PHYF912300AB480BGN",
		"AB  CD\tEF":               "AB_CD_EF",
		"a/b,c":                    "a_b_c",
		"x\x00garbage after a NUL": "x",
		"\xff\xfeok":               "__ok",
		"Größe#1+2=3@x:y.z":        "Größe#1+2=3@x:y.z",
		"":                         "",
	} {
		if got := udevSafe([]byte(in)); got != want {
			t.Errorf("udevSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnitSerialNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ page, want string }{
		{"008000052041424320", "ABC"},       // " ABC ": padding trimmed
		{"00800010414243", "ABC"},           // length says 16, 3 present: what there is
		{"00830003414243", ""},              // not page 0x80
		{"0080", ""},                        // truncated header
		{"008000034142430000000000", "ABC"}, // trailing bytes beyond the length
	} {
		page, err := hex.DecodeString(tc.page)
		if err != nil {
			t.Fatal(err)
		}
		if got := unitSerialNumber(page); got != tc.want {
			t.Errorf("unitSerialNumber(%s) = %q, want %q", tc.page, got, tc.want)
		}
	}
}

func TestParseVPD83(t *testing.T) {
	t.Parallel()
	desc := func(codeSet, assocType byte, data string) string {
		return hex.EncodeToString([]byte{codeSet, assocType, 0, byte(len(data) / 2)}) + data
	}
	page := func(descs ...string) []byte {
		body := strings.Join(descs, "")
		b, err := hex.DecodeString("0083" + hex.EncodeToString([]byte{0, byte(len(body) / 2)}) + body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	naa5 := "5000c500a1b2c3d4"
	naa6 := "6001405a1b2c3d4e" + "5f60718293a4b5c6"
	for _, tc := range []struct {
		name           string
		page           []byte
		wwn, extension string
	}{
		{"NAA 5", page(desc(1, 0x03, naa5)), "0x" + naa5, ""},
		{"NAA 6 before an earlier NAA 5", page(desc(1, 0x03, naa5), desc(1, 0x03, naa6)),
			"0x6001405a1b2c3d4e", "0x5f60718293a4b5c6"},
		{"target port NAA ignored", page(desc(1, 0x93, "5000c500b1c2d3e5")), "", ""},
		{"ASCII NAA", page(desc(2, 0x03, hex.EncodeToString([]byte("5000C500A1B2C3D4")))), "0x" + naa5, ""},
		{"binary before ASCII", page(desc(2, 0x03, hex.EncodeToString([]byte("5000C500FFFFFFFF"))), desc(1, 0x03, naa5)),
			"0x" + naa5, ""},
		{"EUI-64 is no WWN", page(desc(1, 0x02, "0025385b91b0a1c3")), "", ""},
		{"a descriptor running past the page", page(desc(1, 0x03, naa5))[:10], "", ""},
		{"not page 0x83", []byte{0, 0x80, 0, 0}, "", ""},
	} {
		ids := parseVPD83(tc.page)
		if ids.wwn != tc.wwn || ids.wwnVendorExtension != tc.extension {
			t.Errorf("%s: %q %q, want %q %q", tc.name, ids.wwn, ids.wwnVendorExtension, tc.wwn, tc.extension)
		}
	}
	// SAT's model and serial designator, from libata.
	t10 := hex.EncodeToString([]byte("ATA     " + "INTEL SSDSC2KB480G8" + strings.Repeat(" ", 21) + "PHYF912300AB480BGN  "))
	if ids := parseVPD83(page(desc(2, 0x01, t10))); ids.ataModel != "INTEL SSDSC2KB480G8" || ids.wwn != "" {
		t.Errorf("T10 designator: %+v", ids)
	}
}

func TestWWIDToWWN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"naa.5000c500a1b2c3d4":                 {"0x5000c500a1b2c3d4", ""},
		"naa.6001405a1b2c3d4e5f60718293a4b5c6": {"0x6001405a1b2c3d4e", "0x5f60718293a4b5c6"},
		"t10.ATA     QEMU HARDDISK":            {"", ""},
		"naa.5000c500a1b2c3zz":                 {"", ""},
		"eui.0025385b91b0a1c3":                 {"", ""},
	} {
		if wwn, ext := wwidToWWN(in); wwn != want[0] || ext != want[1] {
			t.Errorf("wwidToWWN(%q) = %q %q, want %q", in, wwn, ext, want)
		}
	}
}

func TestPathIDPieces(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pci-0000:00:14.0-usbv2-0:3:1.0-scsi-0:0:0:0": "pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0",
		"pci-0000:00:14.0-usbv3-0:1:1.0-scsi-0:0:0:0": "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0",
		"pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0":   "pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0",
		"usbv2-0:3":                "usbv2-0:3",
		"pci-0000:00:17.0-ata-1.0": "pci-0000:00:17.0-ata-1.0",
	} {
		if got := dropUSBRevision(in); got != want {
			t.Errorf("dropUSBRevision(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"0:0:0:0": "lun-0", "2:0:1:255": "lun-255", "2:0:1:256": "lun-0x0100000000000000",
		"2:0:1:65537": "lun-0x0001000100000000"} {
		if got, ok := lunPart(in); !ok || got != want {
			t.Errorf("lunPart(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := lunPart("0:0:0"); ok {
		t.Error("lunPart of three numbers")
	}
}

func TestParseCPUInfo(t *testing.T) {
	t.Parallel()
	stanzas := parseCPUInfo("processor\t: 0\nmodel name\t: A\n\nprocessor\t: 1\nmodel name\t: A\n\nHardware\t: BCM2835\n")
	if len(stanzas) != 2 || stanzas[1]["model name"] != "A" {
		t.Errorf("stanzas %v", stanzas)
	}
	if got := armCoreName("0x41", "0xd0c"); got != "Neoverse-N1" {
		t.Errorf("armCoreName(0x41, 0xd0c) = %q", got)
	}
	if got := armCoreName("0x41", "garbage"); got != "" {
		t.Errorf("armCoreName(garbage) = %q", got)
	}
	if linuxArch("amd64") != "x86_64" || linuxArch("arm64") != "aarch64" || linuxArch("riscv64") != "riscv64" {
		t.Error("linuxArch")
	}
}

// Links are followed inside the tree: absolute targets and ".." stop at
// its root, and loops end.
func TestTreeConfinesLinks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("inside\n"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "sys"), 0o755))
	must(os.Symlink("/etc", filepath.Join(root, "sys/absolute")))
	must(os.Symlink("../../../../../../etc", filepath.Join(root, "sys/up")))
	must(os.Symlink("loop2", filepath.Join(root, "sys/loop1")))
	must(os.Symlink("loop1", filepath.Join(root, "sys/loop2")))
	tr := newTree(root, nil)
	for _, p := range []string{"sys/absolute/hostname", "sys/up/hostname", "/sys/../../etc/hostname"} {
		if got := tr.attr(p); got != "inside" {
			t.Errorf("%s: %q, want the tree's etc/hostname", p, got)
		}
	}
	if _, err := tr.resolve("sys/loop1/x"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("a link loop: %v", err)
	}
	big := filepath.Join(root, "big")
	must(os.WriteFile(big, make([]byte, maxAttrBytes+1), 0o644))
	if _, err := tr.read("big", maxAttrBytes); err == nil {
		t.Error("an attribute over the bound was read")
	}
}

// Recorded pages and arbitrary bytes never make the parsers panic.
func FuzzVPDPages(f *testing.F) {
	for _, seed := range []string{
		"0080001450485946393132333030414234383042474e2020",
		"0083000c0103000855cd2e414f9a1b2c",
		"00830000", "", "00", "0083ffff01030008",
	} {
		b, _ := hex.DecodeString(seed)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, page []byte) {
		unitSerialNumber(page)
		ids := parseVPD83(page)
		if ids.wwn != "" && !strings.HasPrefix(ids.wwn, "0x") {
			t.Errorf("wwn %q", ids.wwn)
		}
	})
}
