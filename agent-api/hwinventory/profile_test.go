package hwinventory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/disks"
	"github.com/ferric-metal/ferric/conductor/inventory"
)

// copyProfile puts testdata/profiles/example.json in a temporary
// directory, where Machine may create its disk files.
func copyProfile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("testdata/profiles/example.json")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "example.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExampleProfile(t *testing.T) {
	t.Parallel()
	path := copyProfile(t)
	dir := filepath.Dir(path)
	// An existing larger disk1.img keeps its size and content.
	big := filepath.Join(dir, "disk1.img")
	if err := os.WriteFile(big, []byte("boot sector"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 2<<30); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != dir {
		t.Errorf("Dir %q, want %q", p.Dir, dir)
	}
	m, err := p.Machine()
	if err != nil {
		t.Fatal(err)
	}
	want := agentwire.Inventory{
		Interfaces: []agentwire.Interface{
			{Name: "eno1", MACAddress: "52:54:00:a0:00:01", IPv4Address: "10.20.0.15", HasCarrier: true,
				Vendor: "0x8086", Product: "0x1563", Driver: "ixgbe", SpeedMbps: 10000, PCIAddress: "0000:19:00.0"},
			{Name: "eno2", MACAddress: "52:54:00:a0:00:02", Driver: "ixgbe"},
		},
		CPU: &agentwire.CPU{Count: 8, Architecture: "x86_64", ModelName: "Intel(R) Xeon(R) Silver 4208 CPU @ 2.10GHz",
			Frequency: "3200.0000", Flags: []string{"fpu", "sse4_2", "avx2", "aes"}, SocketCount: 1},
		Memory: &agentwire.Memory{Total: 16 << 30, PhysicalMB: 16 << 10},
		Disks: []agentwire.Disk{
			{Name: "/dev/sda", Size: 8 << 30, Model: "INTEL SSDSC2KB480G8", Vendor: "ATA", Serial: "SIMDISK0001",
				WWN: "0x55cd2e414f9a1b2c", WWNWithExtension: "0x55cd2e414f9a1b2c", HCTL: "0:0:0:0",
				ByPath: "/dev/disk/by-path/pci-0000:00:17.0-ata-1.0", LogicalSectors: 512, PhysicalSectors: 4096,
				Tran: "sata"},
			{Name: "/dev/sdb", Size: 2 << 30, Rotational: true, LogicalSectors: 512, PhysicalSectors: 512, Tran: "sata"},
		},
		BMCAddress:   "10.10.0.15",
		BMCMAC:       "d0:94:66:aa:bb:cc",
		SystemVendor: &agentwire.SystemVendor{ProductName: "PowerEdge R640", SerialNumber: "SIM0001", Manufacturer: "Dell Inc."},
		Boot:         &agentwire.Boot{CurrentBootMode: "uefi", PXEInterface: "52:54:00:a0:00:01"},
		Hostname:     "sim-r640",
	}
	diffJSON(t, "inventory", m.Inventory, want)
	diffJSON(t, "disks", m.Disks, []disks.Disk{
		{Name: "/dev/sda", Path: filepath.Join(dir, "disk0.img"), Size: 8 << 30, Model: "INTEL SSDSC2KB480G8",
			Vendor: "ATA", Serial: "SIMDISK0001", WWN: "0x55cd2e414f9a1b2c", WWNWithExtension: "0x55cd2e414f9a1b2c",
			HCTL: "0:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:00:17.0-ata-1.0"},
		{Name: "/dev/sdb", Path: big, Size: 2 << 30, Rotational: true},
	})
	checkServerAccepts(t, m.Inventory)

	// disk0.img was created sparse at 8 GiB; disk1.img kept its size and data.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "disk0.img"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 8<<30 || st.Blocks*512 > 1<<20 {
		t.Errorf("disk0.img: %d bytes, %d allocated; want 8 GiB, sparse", st.Size, st.Blocks*512)
	}
	if info, err := os.Stat(big); err != nil || info.Size() != 2<<30 || !startsWith(t, big, "boot sector") {
		t.Errorf("disk1.img changed: %v, %v", info, err)
	}
	// A second Machine changes nothing.
	again, err := p.Machine()
	if err != nil {
		t.Fatal(err)
	}
	diffJSON(t, "second machine", again.Disks, m.Disks)
}

func TestProfileExtendsASmallerFile(t *testing.T) {
	t.Parallel()
	path := copyProfile(t)
	small := filepath.Join(filepath.Dir(path), "disk0.img")
	if err := os.WriteFile(small, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Machine()
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(small)
	if err != nil || info.Size() != 8<<30 || m.Disks[0].Size != 8<<30 {
		t.Fatalf("disk0.img: %v, %v; machine says %d", info, err, m.Disks[0].Size)
	}
	if !startsWith(t, small, "data") {
		t.Error("extending lost the file's content")
	}
}

func startsWith(t *testing.T, file, prefix string) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, len(prefix))
	n, _ := f.Read(buf)
	return string(buf[:n]) == prefix
}

func TestProfileRefusesDevicesAsDisks(t *testing.T) {
	t.Parallel()
	p, err := SimulatedProfile(0, t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	p.Disks[0].File = os.DevNull
	if _, err := p.Machine(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a character device as a disk: %v", err)
	}
	p.Disks[0].File = t.TempDir()
	if _, err := p.Machine(); err == nil {
		t.Error("a directory as a disk succeeded")
	}
}

func TestProfileValidation(t *testing.T) {
	t.Parallel()
	base, err := os.ReadFile("testdata/profiles/example.json")
	if err != nil {
		t.Fatal(err)
	}
	// edit applies a change to the example's JSON as a generic document.
	edit := func(change func(doc map[string]any)) []byte {
		var doc map[string]any
		if err := json.Unmarshal(base, &doc); err != nil {
			t.Fatal(err)
		}
		change(doc)
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	iface := func(doc map[string]any, i int) map[string]any { return doc["interfaces"].([]any)[i].(map[string]any) }
	disk := func(doc map[string]any, i int) map[string]any { return doc["disks"].([]any)[i].(map[string]any) }
	for _, tc := range []struct {
		name, want string
		doc        []byte
	}{
		{"unknown member", `unknown field "colour"`, edit(func(d map[string]any) { d["colour"] = "red" })},
		{"unknown nested member", `unknown field "speed"`, edit(func(d map[string]any) { iface(d, 0)["speed"] = 1 })},
		{"trailing data", "after the profile", append(append([]byte{}, base...), []byte(" {}")...)},
		{"boot mode", `boot_mode: "legacy" is neither`, edit(func(d map[string]any) { d["boot_mode"] = "legacy" })},
		{"no interfaces", "interfaces: a machine needs", edit(func(d map[string]any) { d["interfaces"] = []any{} })},
		{"bad MAC", `interfaces[1].mac_address: "52:54:00:zz:00:02" is not a MAC address`,
			edit(func(d map[string]any) { iface(d, 1)["mac_address"] = "52:54:00:zz:00:02" })},
		{"multicast MAC", `interfaces[0].mac_address: "01:00:5e:00:00:01" is a multicast address`,
			edit(func(d map[string]any) { iface(d, 0)["mac_address"] = "01:00:5e:00:00:01" })},
		{"repeated MAC", "interfaces[1].mac_address: 52:54:00:a0:00:01 is also interfaces[0]'s",
			edit(func(d map[string]any) { iface(d, 1)["mac_address"] = "52-54-00-A0-00-01" })},
		{"repeated name", `interfaces[1].name: "eno1" is also interfaces[0]'s`,
			edit(func(d map[string]any) { iface(d, 1)["name"] = "eno1" })},
		{"bad name", `interfaces[0].name: "eth 0" is not`, edit(func(d map[string]any) { iface(d, 0)["name"] = "eth 0" })},
		{"v6 as v4", `interfaces[0].ipv4_address: "fd00::1" is not an IPv4 address`,
			edit(func(d map[string]any) { iface(d, 0)["ipv4_address"] = "fd00::1" })},
		{"boot interface", `boot_interface: "eth9" is none`, edit(func(d map[string]any) { d["boot_interface"] = "eth9" })},
		{"cpu count", "cpu.count: 0 is not", edit(func(d map[string]any) { d["cpu"].(map[string]any)["count"] = 0 })},
		{"cpu architecture", `cpu.architecture: "amd64" is neither`,
			edit(func(d map[string]any) { d["cpu"].(map[string]any)["architecture"] = "amd64" })},
		{"memory", "memory.size: 0 bytes", edit(func(d map[string]any) { d["memory"] = map[string]any{} })},
		{"BMC address", `bmc.address: "10.10.0.256" is not`,
			edit(func(d map[string]any) { d["bmc"].(map[string]any)["address"] = "10.10.0.256" })},
		{"disk size zero", "disks[1].size: 0 bytes is not a disk size", edit(func(d map[string]any) { disk(d, 1)["size"] = 0 })},
		{"disk size negative", "disks[1].size: -5 bytes", edit(func(d map[string]any) { disk(d, 1)["size"] = -5 })},
		{"disk size unit", `size "8 gigs" is not a whole number`, edit(func(d map[string]any) { disk(d, 0)["size"] = "8 gigs" })},
		{"disk size fraction", "is not a whole number of bytes", edit(func(d map[string]any) { disk(d, 0)["size"] = 1.5 })},
		{"disk size overflow", "too large", edit(func(d map[string]any) { disk(d, 0)["size"] = "9000000PiB" })},
		{"disk name", `disks[0].name: "sda" is not a device name`, edit(func(d map[string]any) { disk(d, 0)["name"] = "sda" })},
		{"disk name repeated", `disks[1].name: "/dev/sda" is also disks[0]'s`,
			edit(func(d map[string]any) { disk(d, 1)["name"] = "/dev/sda" })},
		{"disk file missing", "disks[0].file: a disk needs a file", edit(func(d map[string]any) { delete(disk(d, 0), "file") })},
		{"disk file repeated", `disks[1].file: "./disk0.img" is also disks[0]'s`,
			edit(func(d map[string]any) { disk(d, 1)["file"] = "./disk0.img" })},
		{"sector size", "disks[0].physical_sectors: 1000 is not a sector size",
			edit(func(d map[string]any) { disk(d, 0)["physical_sectors"] = 1000 })},
		{"by-path", `disks[0].by_path: "pci-0000:00:17.0-ata-1" is not under`,
			edit(func(d map[string]any) { disk(d, 0)["by_path"] = "pci-0000:00:17.0-ata-1" })},
	} {
		path := filepath.Join(t.TempDir(), "p.json")
		if err := os.WriteFile(path, tc.doc, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadProfile(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s and saying %q", tc.name, err, path, tc.want)
		}
	}
	if _, err := LoadProfile(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Error("an absent profile loaded")
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ByteSize{
		`8589934592`: 8 << 30, `"8GiB"`: 8 << 30, `"512 MiB"`: 512 << 20, `"1TB"`: 1e12, `"1kB"`: 1000, `"7"`: 7,
	} {
		var got ByteSize
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{`"8G"`, `"GiB"`, `"-1GiB"`, `"1.5GiB"`, `true`, `"9223372036854775808"`} {
		var got ByteSize
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("%s: %d, want an error", in, got)
		}
	}
	for size, want := range map[ByteSize]string{8 << 30: `"8GiB"`, 1536 << 20: `"1536MiB"`, 1000: `1000`, 0: `0`} {
		if got, err := json.Marshal(size); err != nil || string(got) != want {
			t.Errorf("Marshal(%d) = %s, %v; want %s", size, got, err, want)
		}
	}
}

// A simulator's fleet: distinct, deterministic machines the server tells
// apart, each with its own disk file.
func TestSimulatedMachines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	macs, serials, files := map[string]int{}, map[string]int{}, map[string]int{}
	for _, index := range []int{0, 1, 2, 255, 256, 65535, 65536, MaxSimulatedMachines - 1} {
		p, err := SimulatedProfile(index, dir, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.Machine()
		if err != nil {
			t.Fatalf("machine %d: %v", index, err)
		}
		data := checkServerAccepts(t, m.Inventory)
		ev := inventory.EvidenceOf(&data.Inventory)
		if len(ev.MACs) != 2 || ev.Serial == "" {
			t.Errorf("machine %d: evidence %+v", index, ev)
		}
		for _, mac := range ev.MACs {
			if !strings.HasPrefix(mac, "52:54:00:") {
				t.Errorf("machine %d: MAC %s", index, mac)
			}
			if other, dup := macs[mac]; dup {
				t.Errorf("machines %d and %d share %s", other, index, mac)
			}
			macs[mac] = index
		}
		if other, dup := serials[ev.Serial]; dup {
			t.Errorf("machines %d and %d share serial %s", other, index, ev.Serial)
		}
		serials[ev.Serial] = index
		if other, dup := files[m.Disks[0].Path]; dup {
			t.Errorf("machines %d and %d share %s", other, index, m.Disks[0].Path)
		}
		files[m.Disks[0].Path] = index
		if info, err := os.Stat(m.Disks[0].Path); err != nil || info.Size() != 64<<20 || filepath.Dir(m.Disks[0].Path) != dir {
			t.Errorf("machine %d: disk file %s: %v", index, m.Disks[0].Path, err)
		}
		again, err := SimulatedProfile(index, dir, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		diffJSON(t, "the same index twice", again, p)
	}
	if first, _ := SimulatedProfile(1, dir, 1); first.Interfaces[0].MACAddress != "52:54:00:00:00:02" || first.Interfaces[1].MACAddress != "52:54:00:00:00:03" {
		t.Errorf("machine 1's MACs: %+v", first.Interfaces)
	}
	for _, bad := range []struct {
		index int
		size  int64
	}{{-1, 1}, {MaxSimulatedMachines, 1}, {0, 0}, {0, -1}} {
		if _, err := SimulatedProfile(bad.index, dir, bad.size); err == nil {
			t.Errorf("SimulatedProfile(%d, %d) succeeded", bad.index, bad.size)
		}
	}
}
