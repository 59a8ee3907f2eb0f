package hwinventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/disks"
)

// Profile is a simulated machine (ferric-agent --simulate PROFILE): the
// hardware the agent reports, with files standing in for its disks. Its
// JSON uses the inventory's member names where there is one; unknown
// members are refused. See testdata/profiles/example.json.
type Profile struct {
	Hostname      string             `json:"hostname,omitempty"`
	SystemVendor  ProfileVendor      `json:"system_vendor"`
	BootMode      string             `json:"boot_mode"`                // "uefi" or "bios"
	BootInterface string             `json:"boot_interface,omitempty"` // the interface that PXE-booted; default the first
	CPU           ProfileCPU         `json:"cpu"`
	Memory        ProfileMemory      `json:"memory"`
	BMC           ProfileBMC         `json:"bmc"`
	Interfaces    []ProfileInterface `json:"interfaces"`
	Disks         []ProfileDisk      `json:"disks"`

	// Dir is where relative disk files are: the profile file's directory
	// when loaded by LoadProfile, else the current directory when empty.
	Dir string `json:"-"`
}

// ProfileVendor is the DMI identity.
type ProfileVendor struct {
	Manufacturer string `json:"manufacturer"`
	ProductName  string `json:"product_name"`
	SerialNumber string `json:"serial_number"`
}

// ProfileCPU is the processor section of the inventory.
type ProfileCPU struct {
	Count        int      `json:"count"`
	Architecture string   `json:"architecture"` // x86_64 or aarch64
	ModelName    string   `json:"model_name,omitempty"`
	Frequency    string   `json:"frequency,omitempty"` // MHz, as IPA sends it: "2400.0000"
	Flags        []string `json:"flags,omitempty"`
	SocketCount  int      `json:"socket_count,omitempty"`
}

// ProfileMemory is the installed memory; the inventory's total is the same.
type ProfileMemory struct {
	Size ByteSize `json:"size"`
}

// ProfileBMC is the BMC's addresses, all optional.
type ProfileBMC struct {
	Address   string `json:"address,omitempty"`
	V6Address string `json:"v6address,omitempty"`
	MAC       string `json:"mac,omitempty"`
}

// ProfileInterface is a network interface.
type ProfileInterface struct {
	Name        string `json:"name"`
	MACAddress  string `json:"mac_address"`
	IPv4Address string `json:"ipv4_address,omitempty"`
	IPv6Address string `json:"ipv6_address,omitempty"`
	HasCarrier  *bool  `json:"has_carrier,omitempty"` // default true
	Vendor      string `json:"vendor,omitempty"`
	Product     string `json:"product,omitempty"`
	Driver      string `json:"driver,omitempty"`
	SpeedMbps   int    `json:"speed_mbps,omitempty"`
	PCIAddress  string `json:"pci_address,omitempty"`
}

// ProfileDisk is a disk and the file that backs it. The file is created
// sparse at Size when missing and extended when smaller, never shrunk: a
// larger file keeps its size, which is then the disk's.
type ProfileDisk struct {
	Name               string   `json:"name"` // /dev/vda
	File               string   `json:"file"` // relative to the profile's directory unless absolute
	Size               ByteSize `json:"size"` // 8589934592 or "8GiB"
	Model              string   `json:"model,omitempty"`
	Vendor             string   `json:"vendor,omitempty"`
	Serial             string   `json:"serial,omitempty"`
	WWN                string   `json:"wwn,omitempty"`
	WWNWithExtension   string   `json:"wwn_with_extension,omitempty"`
	WWNVendorExtension string   `json:"wwn_vendor_extension,omitempty"`
	Rotational         bool     `json:"rotational,omitempty"`
	HCTL               string   `json:"hctl,omitempty"`
	ByPath             string   `json:"by_path,omitempty"`
	LogicalSectors     int      `json:"logical_sectors,omitempty"`  // default 512
	PhysicalSectors    int      `json:"physical_sectors,omitempty"` // default 512
	Tran               string   `json:"tran,omitempty"`
	ReadOnly           bool     `json:"read_only,omitempty"`
	Removable          bool     `json:"removable,omitempty"`
}

// ByteSize is a size in bytes, written in JSON as a number or as a string
// with a unit: "512MiB", "8GiB", "1TB" (binary and decimal units; B, K...
// alone are not accepted, being ambiguous).
type ByteSize int64

var byteUnits = map[string]int64{
	"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
}

// ParseByteSize reads a size as ByteSize's JSON string form does.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	digits, unit := s, "B"
	if i >= 0 {
		digits, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	mult, known := byteUnits[unit]
	if err != nil || !known {
		return 0, fmt.Errorf("size %q is not a whole number of B, KiB, MiB, GiB, TiB, kB, MB, GB or TB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalJSON accepts a number of bytes or a string with a unit.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil // as encoding/json leaves other types
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		size, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		*b = size
		return nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil {
		return fmt.Errorf("size %s is not a whole number of bytes", data)
	}
	*b = ByteSize(n)
	return nil
}

// MarshalJSON writes the size in the largest binary unit that divides it.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	for _, u := range []string{"PiB", "TiB", "GiB", "MiB", "KiB"} {
		if m := byteUnits[u]; b > 0 && int64(b)%m == 0 {
			return json.Marshal(fmt.Sprintf("%d%s", int64(b)/m, u))
		}
	}
	return json.Marshal(int64(b))
}

// maxProfileBytes bounds a profile file: a hand-written document.
const maxProfileBytes = 1 << 20

// LoadProfile reads and validates a simulation profile. Its disk files are
// neither created nor opened until Machine.
func LoadProfile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("simulation profile: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("simulation profile %s: %w", path, err)
	}
	if len(data) > maxProfileBytes {
		return nil, fmt.Errorf("simulation profile %s: larger than %d bytes", path, maxProfileBytes)
	}
	p, err := ParseProfile(data)
	if err != nil {
		return nil, fmt.Errorf("simulation profile %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("simulation profile %s: %w", path, err)
	}
	p.Dir = abs
	return p, nil
}

// ParseProfile decodes and validates a profile document; relative disk
// files are then relative to the current directory until Dir is set.
func ParseProfile(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the profile's object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks what JSON's types cannot: required members, MAC and IP
// addresses, names, sizes. The first problem is reported, by member path.
func (p *Profile) Validate() error {
	invalid := func(member, format string, args ...any) error {
		return fmt.Errorf("%s: %s", member, fmt.Sprintf(format, args...))
	}
	if p.BootMode != "uefi" && p.BootMode != "bios" {
		return invalid("boot_mode", "%q is neither \"uefi\" nor \"bios\"", p.BootMode)
	}
	if p.CPU.Count <= 0 || p.CPU.Count > 1<<20 {
		return invalid("cpu.count", "%d is not a number of CPUs", p.CPU.Count)
	}
	if p.CPU.Architecture != "x86_64" && p.CPU.Architecture != "aarch64" {
		return invalid("cpu.architecture", "%q is neither \"x86_64\" nor \"aarch64\"", p.CPU.Architecture)
	}
	if p.CPU.SocketCount < 0 {
		return invalid("cpu.socket_count", "%d is negative", p.CPU.SocketCount)
	}
	if p.CPU.Frequency != "" {
		if mhz, err := strconv.ParseFloat(p.CPU.Frequency, 64); err != nil || mhz <= 0 {
			return invalid("cpu.frequency", "%q is not a frequency in MHz", p.CPU.Frequency)
		}
	}
	if p.Memory.Size < 1<<20 {
		return invalid("memory.size", "%d bytes is less than a MiB", int64(p.Memory.Size))
	}
	if err := checkIP(p.BMC.Address, true); err != nil {
		return invalid("bmc.address", "%v", err)
	}
	if err := checkIP(p.BMC.V6Address, false); err != nil {
		return invalid("bmc.v6address", "%v", err)
	}
	if p.BMC.MAC != "" {
		if _, err := normalMAC(p.BMC.MAC); err != nil {
			return invalid("bmc.mac", "%v", err)
		}
	}
	if len(p.Interfaces) == 0 {
		return invalid("interfaces", "a machine needs at least one interface to be found by")
	}
	names, macs := map[string]int{}, map[string]int{}
	for i, iface := range p.Interfaces {
		member := fmt.Sprintf("interfaces[%d]", i)
		if !validIfName(iface.Name) {
			return invalid(member+".name", "%q is not an interface name (1 to 15 letters, digits, '.', '-' or '_')", iface.Name)
		}
		if j, dup := names[iface.Name]; dup {
			return invalid(member+".name", "%q is also interfaces[%d]'s", iface.Name, j)
		}
		names[iface.Name] = i
		mac, err := normalMAC(iface.MACAddress)
		if err != nil {
			return invalid(member+".mac_address", "%v", err)
		}
		if j, dup := macs[mac]; dup {
			return invalid(member+".mac_address", "%s is also interfaces[%d]'s", mac, j)
		}
		macs[mac] = i
		if err := checkIP(iface.IPv4Address, true); err != nil {
			return invalid(member+".ipv4_address", "%v", err)
		}
		if err := checkIP(iface.IPv6Address, false); err != nil {
			return invalid(member+".ipv6_address", "%v", err)
		}
		if iface.SpeedMbps < 0 {
			return invalid(member+".speed_mbps", "%d is negative", iface.SpeedMbps)
		}
	}
	if _, ok := names[p.BootInterface]; p.BootInterface != "" && !ok {
		return invalid("boot_interface", "%q is none of the interfaces", p.BootInterface)
	}
	diskNames, files := map[string]int{}, map[string]int{}
	for i, d := range p.Disks {
		member := fmt.Sprintf("disks[%d]", i)
		if dev, ok := strings.CutPrefix(d.Name, "/dev/"); !ok || !validDevName(dev) {
			return invalid(member+".name", "%q is not a device name like /dev/vda", d.Name)
		}
		if j, dup := diskNames[d.Name]; dup {
			return invalid(member+".name", "%q is also disks[%d]'s", d.Name, j)
		}
		diskNames[d.Name] = i
		if d.File == "" {
			return invalid(member+".file", "a disk needs a file to stand in for it")
		}
		file := p.diskFile(d)
		if j, dup := files[file]; dup {
			return invalid(member+".file", "%q is also disks[%d]'s", d.File, j)
		}
		files[file] = i
		if d.Size <= 0 {
			return invalid(member+".size", "%d bytes is not a disk size", int64(d.Size))
		}
		for _, s := range []struct {
			member string
			value  int
		}{{"logical_sectors", d.LogicalSectors}, {"physical_sectors", d.PhysicalSectors}} {
			if s.value != 0 && (s.value < 512 || s.value&(s.value-1) != 0) {
				return invalid(member+"."+s.member, "%d is not a sector size (512, 4096...)", s.value)
			}
		}
		if d.ByPath != "" && !strings.HasPrefix(d.ByPath, "/dev/disk/by-path/") {
			return invalid(member+".by_path", "%q is not under /dev/disk/by-path/", d.ByPath)
		}
	}
	return nil
}

func checkIP(s string, v4 bool) error {
	if s == "" {
		return nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Is4() != v4 || addr.Zone() != "" {
		family := "IPv6"
		if v4 {
			family = "IPv4"
		}
		return fmt.Errorf("%q is not an %s address", s, family)
	}
	return nil
}

// normalMAC returns an interface's MAC address, lower case with colons.
func normalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address (aa:bb:cc:dd:ee:ff)", s)
	}
	if hw[0]&1 != 0 {
		return "", fmt.Errorf("%q is a multicast address, no interface's", s)
	}
	return hw.String(), nil
}

// validIfName is the kernel's rule (dev_valid_name) narrowed to what a
// profile needs.
func validIfName(s string) bool {
	return len(s) > 0 && len(s) < 16 && s != "." && s != ".." && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == ""
}

func validDevName(s string) bool {
	return len(s) > 0 && len(s) <= 32 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// diskFile is the absolute (or, Dir being empty, cleaned relative) path of
// a disk's backing file.
func (p *Profile) diskFile(d ProfileDisk) string {
	if filepath.IsAbs(d.File) || p.Dir == "" {
		return filepath.Clean(d.File)
	}
	return filepath.Join(p.Dir, d.File)
}

// Machine is the simulated machine: its inventory, and its disks as the
// agent opens them, each backed by its file, which is created (sparse) or
// extended to the disk's size. A backing path that exists and is not a
// regular file is refused: a simulation never opens a real device. Machine
// does not change p, and may be called again (and concurrently): an
// existing file is left as it is.
func (p *Profile) Machine() (*Machine, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("simulation profile: %w", err)
	}
	inv := agentwire.Inventory{
		CPU: &agentwire.CPU{Count: p.CPU.Count, Architecture: p.CPU.Architecture, ModelName: p.CPU.ModelName,
			Frequency: p.CPU.Frequency, Flags: p.CPU.Flags, SocketCount: p.CPU.SocketCount},
		Memory:       &agentwire.Memory{Total: int64(p.Memory.Size), PhysicalMB: int64(p.Memory.Size) >> 20},
		BMCAddress:   p.BMC.Address,
		BMCv6Address: p.BMC.V6Address,
		Boot:         &agentwire.Boot{CurrentBootMode: p.BootMode},
		Hostname:     p.Hostname,
	}
	if p.BMC.MAC != "" {
		inv.BMCMAC, _ = normalMAC(p.BMC.MAC)
	}
	if v := p.SystemVendor; v != (ProfileVendor{}) {
		inv.SystemVendor = &agentwire.SystemVendor{Manufacturer: v.Manufacturer, ProductName: v.ProductName, SerialNumber: v.SerialNumber}
	}
	for i, iface := range p.Interfaces {
		mac, _ := normalMAC(iface.MACAddress)
		carrier := iface.HasCarrier == nil || *iface.HasCarrier
		inv.Interfaces = append(inv.Interfaces, agentwire.Interface{
			Name: iface.Name, MACAddress: mac, IPv4Address: iface.IPv4Address, IPv6Address: iface.IPv6Address,
			HasCarrier: carrier, Vendor: iface.Vendor, Product: iface.Product, Driver: iface.Driver,
			SpeedMbps: iface.SpeedMbps, PCIAddress: iface.PCIAddress,
		})
		if iface.Name == p.BootInterface || p.BootInterface == "" && i == 0 {
			inv.Boot.PXEInterface = mac
		}
	}
	m := &Machine{}
	for i, d := range p.Disks {
		file, err := filepath.Abs(p.diskFile(d))
		if err != nil {
			return nil, fmt.Errorf("simulation profile: disks[%d].file: %w", i, err)
		}
		size, err := ensureDiskFile(file, int64(d.Size))
		if err != nil {
			return nil, fmt.Errorf("simulation profile: disks[%d] (%s): %w", i, d.Name, err)
		}
		disk := disks.Disk{
			Name: d.Name, Path: file, Size: size, Model: d.Model, Vendor: d.Vendor, Serial: d.Serial,
			WWN: d.WWN, WWNWithExtension: d.WWNWithExtension, WWNVendorExtension: d.WWNVendorExtension,
			Rotational: d.Rotational, HCTL: d.HCTL, ByPath: d.ByPath, ReadOnly: d.ReadOnly, Removable: d.Removable,
		}
		if disk.WWNWithExtension == "" && disk.WWN != "" && disk.WWNVendorExtension == "" {
			disk.WWNWithExtension = disk.WWN
		}
		m.Disks = append(m.Disks, disk)
		inv.Disks = append(inv.Disks, agentwire.Disk{
			Name: disk.Name, Size: disk.Size, Model: disk.Model, Vendor: disk.Vendor, Serial: disk.Serial,
			WWN: disk.WWN, WWNWithExtension: disk.WWNWithExtension, WWNVendorExtension: disk.WWNVendorExtension,
			Rotational: disk.Rotational, HCTL: disk.HCTL, ByPath: disk.ByPath,
			LogicalSectors: orDefault(d.LogicalSectors, 512), PhysicalSectors: orDefault(d.PhysicalSectors, 512),
			Tran: d.Tran, ReadOnly: disk.ReadOnly, Removable: disk.Removable,
		})
	}
	m.Inventory = inv
	return m, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// ensureDiskFile makes file a regular file of at least size bytes (a hole
// where it grew) and returns its size.
func ensureDiskFile(file string, size int64) (_ int64, err error) {
	if info, err := os.Stat(file); err == nil && !info.Mode().IsRegular() {
		return 0, fmt.Errorf("%s exists and is not a regular file", file)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if closeErr := f.Close(); closeErr != nil && err == nil {
			err = closeErr
		}
	}()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !info.Mode().IsRegular() { // replaced since the check
		return 0, fmt.Errorf("%s is not a regular file", file)
	}
	if info.Size() >= size {
		return info.Size(), nil
	}
	if err := f.Truncate(size); err != nil {
		return 0, fmt.Errorf("extending %s to %d bytes: %w", file, size, err)
	}
	return size, nil
}

// MaxSimulatedMachines bounds SimulatedProfile's index: two MACs each in
// the 24 bits 52:54:00 leaves.
const MaxSimulatedMachines = 1 << 23

// SimulatedProfile is machine number index of a simulated fleet, for a
// simulator running many agents in one process: a virtual machine's shape
// (virtio NICs and disk, UEFI) with deterministic identities distinct from
// every other index's: MACs 52:54:00:xx:xx:xx, DMI and disk serial
// numbers, WWN, and one disk file of diskSize bytes in dir. The BMC is left
// for the caller to set.
func SimulatedProfile(index int, dir string, diskSize int64) (*Profile, error) {
	if index < 0 || index >= MaxSimulatedMachines {
		return nil, fmt.Errorf("simulated machine %d: the index must be in [0, %d)", index, MaxSimulatedMachines)
	}
	if diskSize <= 0 {
		return nil, fmt.Errorf("simulated machine %d: disk size %d is not positive", index, diskSize)
	}
	mac := func(nic int) string {
		n := index<<1 | nic
		return fmt.Sprintf("52:54:00:%02x:%02x:%02x", n>>16&0xff, n>>8&0xff, n&0xff)
	}
	virtio := func(name string, nic int) ProfileInterface {
		return ProfileInterface{Name: name, MACAddress: mac(nic), Vendor: "0x1af4", Product: "0x0001",
			Driver: "virtio_net", PCIAddress: fmt.Sprintf("0000:00:%02x.0", 3+nic)}
	}
	p := &Profile{
		Hostname: fmt.Sprintf("sim-%06d", index),
		SystemVendor: ProfileVendor{Manufacturer: "Ferric", ProductName: "Simulated Machine",
			SerialNumber: fmt.Sprintf("FSIM%07d", index)},
		BootMode:   "uefi",
		CPU:        ProfileCPU{Count: 2, Architecture: "x86_64", ModelName: "Ferric Simulated CPU", Frequency: "2000.0000", SocketCount: 1},
		Memory:     ProfileMemory{Size: 4 << 30},
		Interfaces: []ProfileInterface{virtio("eth0", 0), virtio("eth1", 1)},
		Disks: []ProfileDisk{{
			Name: "/dev/vda", File: fmt.Sprintf("sim-%06d-vda.img", index), Size: ByteSize(diskSize),
			Vendor: "0x1af4", Serial: fmt.Sprintf("FSIMDISK%07d", index),
			// NAA 5 with the 52:54:00 OUI and the index as the vendor's part.
			WWN:    fmt.Sprintf("0x5525400%09x", index),
			ByPath: "/dev/disk/by-path/pci-0000:00:05.0", Tran: "virtio",
		}},
		Dir: dir,
	}
	return p, nil
}
