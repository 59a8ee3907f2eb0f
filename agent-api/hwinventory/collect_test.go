package hwinventory

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/disks"
	"github.com/ferric-metal/ferric/conductor/inventory"
)

// collectTree collects a test machine, its recorded ipmitool output
// answering for its BMC.
func collectTree(t *testing.T, root string, opts Options) *Machine {
	t.Helper()
	opts.Root = root
	if opts.Run == nil {
		opts.Run = TreeRunner(root)
	}
	m, err := Collect(context.Background(), opts)
	if err != nil {
		t.Fatalf("Collect(%s): %v", filepath.Base(root), err)
	}
	return m
}

// checkFlags checks the CPU flags by their count and a few of them, then
// drops them so that the rest of the inventory compares whole.
func checkFlags(t *testing.T, inv *agentwire.Inventory, count int, some ...string) {
	t.Helper()
	if len(inv.CPU.Flags) != count {
		t.Errorf("cpu.flags: %d flags, want %d", len(inv.CPU.Flags), count)
	}
	for _, f := range some {
		if !slices.Contains(inv.CPU.Flags, f) {
			t.Errorf("cpu.flags lacks %q", f)
		}
	}
	inv.CPU.Flags = nil
}

func diffJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// checkServerAccepts sends the inventory through the server's strict
// parser, as a native lookup body, and returns what the server derives.
func checkServerAccepts(t *testing.T, inv agentwire.Inventory) *inventory.Data {
	t.Helper()
	body, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	data, err := inventory.Parse(body, inventory.FormatNative)
	if err != nil {
		t.Fatalf("the server refuses the inventory: %v\n%s", err, body)
	}
	return data
}

func TestCollectDellR640SATA(t *testing.T) {
	t.Parallel()
	root := machineTree(t, "dell-r640-sata")
	m := collectTree(t, root, Options{BootMAC: "01-e4-43-4b-12-34-50"})
	inv := m.Inventory
	checkFlags(t, &inv, 133, "fpu", "avx512f", "aes", "arch_capabilities")
	want := agentwire.Inventory{
		Interfaces: []agentwire.Interface{
			{Name: "eno1", MACAddress: "e4:43:4b:12:34:50", HasCarrier: true, Vendor: "0x8086", Product: "0x1563",
				Driver: "ixgbe", SpeedMbps: 10000, PCIAddress: "0000:19:00.0"},
			// Down: carrier and speed unreadable.
			{Name: "eno2", MACAddress: "e4:43:4b:12:34:52", Vendor: "0x8086", Product: "0x1563",
				Driver: "ixgbe", PCIAddress: "0000:19:00.1"},
			// Up without a link: carrier 0, speed -1.
			{Name: "eno3", MACAddress: "e4:43:4b:12:34:54", Vendor: "0x8086", Product: "0x1521",
				Driver: "igb", PCIAddress: "0000:01:00.0"},
		},
		CPU: &agentwire.CPU{Count: 12, Architecture: "x86_64", ModelName: "Intel(R) Xeon(R) Bronze 3204 CPU @ 1.90GHz",
			Frequency: "1900.0000", SocketCount: 2},
		// 256 blocks of 128 MiB, one offline.
		Memory: &agentwire.Memory{Total: 32617196 << 10, PhysicalMB: 255 * 128},
		Disks: []agentwire.Disk{
			{Name: "/dev/sda", Size: 937703088 * 512, Model: "INTEL SSDSC2KB480G8", Vendor: "ATA",
				Serial: "PHYF912300AB480BGN", WWN: "0x55cd2e414f9a1b2c", WWNWithExtension: "0x55cd2e414f9a1b2c",
				HCTL: "6:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:00:17.0-ata-1",
				LogicalSectors: 512, PhysicalSectors: 4096, Tran: "sata"},
			{Name: "/dev/sdb", Size: 3907029168 * 512, Model: "ST2000NM0055-1V4104", Vendor: "ATA",
				Serial: "ZC20ABCD", WWN: "0x5000c500a1b2c3d4", WWNWithExtension: "0x5000c500a1b2c3d4",
				Rotational: true, HCTL: "7:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:00:17.0-ata-2",
				LogicalSectors: 512, PhysicalSectors: 512, Tran: "sata"},
			{Name: "/dev/sdc", Size: 2344225968 * 512, Model: "ST1200MM0099", Vendor: "SEAGATE",
				Serial: "WFK0ABCD0000E9191ABC", WWN: "0x5000c500b1c2d3e7", WWNWithExtension: "0x5000c500b1c2d3e7",
				Rotational: true, HCTL: "14:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:18:00.0-sas-phy2-lun-0",
				LogicalSectors: 512, PhysicalSectors: 512, Tran: "sas"},
			{Name: "/dev/sdd", Size: 30031872 * 512, Model: "Cruzer Blade", Vendor: "SanDisk",
				Serial: "4C530001231121115530", Rotational: true, HCTL: "15:0:0:0",
				ByPath:         "/dev/disk/by-path/pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0",
				LogicalSectors: 512, PhysicalSectors: 512, Tran: "usb", Removable: true},
		},
		BMCAddress:   "10.10.0.15",
		BMCMAC:       "d0:94:66:aa:bb:cc",
		SystemVendor: &agentwire.SystemVendor{ProductName: "PowerEdge R640", SerialNumber: "8XKQ4T2", Manufacturer: "Dell Inc."},
		Boot:         &agentwire.Boot{CurrentBootMode: "uefi", PXEInterface: "e4:43:4b:12:34:50"},
		Hostname:     "r640-07",
	}
	diffJSON(t, "inventory", inv, want)

	wantDisks := []disks.Disk{}
	for _, d := range want.Disks {
		wantDisks = append(wantDisks, disks.Disk{Name: d.Name, Path: filepath.Join(root, "dev", filepath.Base(d.Name)),
			Size: d.Size, Model: d.Model, Vendor: d.Vendor, Serial: d.Serial, WWN: d.WWN,
			WWNWithExtension: d.WWNWithExtension, WWNVendorExtension: d.WWNVendorExtension, Rotational: d.Rotational,
			HCTL: d.HCTL, ByPath: d.ByPath, ReadOnly: d.ReadOnly, Removable: d.Removable})
	}
	diffJSON(t, "disks", m.Disks, wantDisks)

	data := checkServerAccepts(t, m.Inventory)
	ev := inventory.EvidenceOf(&data.Inventory)
	diffJSON(t, "evidence", ev, inventory.Evidence{
		MACs:   []string{"e4:43:4b:12:34:50", "e4:43:4b:12:34:52", "e4:43:4b:12:34:54"},
		BMCs:   []string{"10.10.0.15"},
		Serial: "8XKQ4T2",
	})
	diffJSON(t, "properties", inventory.Properties(data), map[string]any{
		"cpus": int64(12), "cpu_arch": "x86_64", "memory_mb": int64(32640),
		"local_gb": int64(15376318464>>30 - 1), // the smallest disk of 4 GiB or more: the USB stick, as IPA picks
	})
}

// Without udev's links, the by-path names are composed as systemd 246 and
// later do: ATA disks by their port on the controller (-ata-<port>.<target>,
// not the kernel's ata7), the USB stick's SCSI host counted from its
// interface's first (scsi-0:..., not host15).
func TestByPathWithoutUdev(t *testing.T) {
	t.Parallel()
	root := extractTree(t, "dell-r640-sata")
	if err := os.RemoveAll(filepath.Join(root, "dev", "disk")); err != nil {
		t.Fatal(err)
	}
	m := collectTree(t, root, Options{})
	var got []string
	for _, d := range m.Inventory.Disks {
		got = append(got, d.Name+" "+d.ByPath)
	}
	diffJSON(t, "by_path", got, []string{
		"/dev/sda /dev/disk/by-path/pci-0000:00:17.0-ata-1.0",
		"/dev/sdb /dev/disk/by-path/pci-0000:00:17.0-ata-2.0",
		"/dev/sdc /dev/disk/by-path/pci-0000:18:00.0-sas-phy2-lun-0",
		"/dev/sdd /dev/disk/by-path/pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0",
	})
}

// With a newer udev's links, the one path_id would compose is chosen over
// the compatibility link.
func TestByPathPrefersComposedUdevLink(t *testing.T) {
	t.Parallel()
	root := extractTree(t, "dell-r640-sata")
	if err := os.Symlink("../../sda", filepath.Join(root, "dev/disk/by-path/pci-0000:00:17.0-ata-1.0")); err != nil {
		t.Fatal(err)
	}
	// A link udev made that the composition does not know wins over none.
	if err := os.Symlink("../../sdc", filepath.Join(root, "dev/disk/by-path/pci-0000:18:00.0-sas-exp0x500056b3a1b2c3ff-phy2-lun-0")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "dev/disk/by-path/pci-0000:18:00.0-sas-phy2-lun-0")); err != nil {
		t.Fatal(err)
	}
	m := collectTree(t, root, Options{})
	if got, want := m.Inventory.Disks[0].ByPath, "/dev/disk/by-path/pci-0000:00:17.0-ata-1.0"; got != want {
		t.Errorf("sda by_path %q, want %q", got, want)
	}
	if got, want := m.Inventory.Disks[2].ByPath, "/dev/disk/by-path/pci-0000:18:00.0-sas-exp0x500056b3a1b2c3ff-phy2-lun-0"; got != want {
		t.Errorf("sdc by_path %q, want %q", got, want)
	}
}

func TestCollectAltraNVMe(t *testing.T) {
	t.Parallel()
	root := machineTree(t, "altra-nvme")
	m := collectTree(t, root, Options{BootMAC: "b8:ce:f6:11:22:30"})
	inv := m.Inventory
	checkFlags(t, &inv, 17, "fp", "asimd", "atomics", "ssbs")
	want := agentwire.Inventory{
		Interfaces: []agentwire.Interface{
			{Name: "eth0", MACAddress: "b8:ce:f6:11:22:30", HasCarrier: true, Vendor: "0x15b3", Product: "0x101d",
				Driver: "mlx5_core", SpeedMbps: 25000, PCIAddress: "000c:01:00.0"},
			{Name: "eth1", MACAddress: "b8:ce:f6:11:22:31", Vendor: "0x15b3", Product: "0x101d",
				Driver: "mlx5_core", PCIAddress: "000c:01:00.1"},
		},
		CPU: &agentwire.CPU{Count: 32, Architecture: "aarch64", ModelName: "Neoverse-N1", Frequency: "1700.0000",
			SocketCount: 1},
		Memory: &agentwire.Memory{Total: 32521532 << 10, PhysicalMB: 256 * 128},
		Disks: []agentwire.Disk{
			// No vendor: IPA reads the controller's, and NVMe controllers
			// have none.
			{Name: "/dev/nvme0n1", Size: 3750748848 * 512, Model: "SAMSUNG MZQL21T9HCJR-00A07",
				Serial: "S64GNE0R123456", WWN: "eui.36344730526054940025384500000001",
				ByPath: "/dev/disk/by-path/pci-0005:01:00.0-nvme-1", LogicalSectors: 512, PhysicalSectors: 512,
				Tran: "nvme"},
			// The multipath head, identified by its subsystem; its hidden
			// path device nvme1c1n1 is not listed.
			{Name: "/dev/nvme1n1", Size: 7501476528 * 512, Model: "KIOXIA KCM6XRUL3T84",
				Serial: "X0R0A0B1T0Q8", WWN: "eui.00000000000000008ce38ee2c4a1b201",
				ByPath: "/dev/disk/by-path/pci-0005:02:00.0-nvme-1", LogicalSectors: 4096, PhysicalSectors: 4096,
				Tran: "nvme"},
		},
		// Channel 1 has no address; channel 2 has both.
		BMCAddress:   "10.20.0.42",
		BMCv6Address: "2001:db8:20::42",
		BMCMAC:       "18:c0:4d:aa:bb:01",
		SystemVendor: &agentwire.SystemVendor{ProductName: "R272-P30-00", SerialNumber: "GKR1N2012A0012", Manufacturer: "GIGABYTE"},
		Boot:         &agentwire.Boot{CurrentBootMode: "uefi", PXEInterface: "b8:ce:f6:11:22:30"},
		Hostname:     "altra-01",
	}
	diffJSON(t, "inventory", inv, want)
	if m.Disks[1].Path != filepath.Join(root, "dev/nvme1n1") {
		t.Errorf("nvme1n1 path %q", m.Disks[1].Path)
	}
	data := checkServerAccepts(t, m.Inventory)
	diffJSON(t, "BMC evidence", inventory.EvidenceOf(&data.Inventory).BMCs, []string{"10.20.0.42", "2001:db8:20::42"})
}

func TestCollectQEMUVirtio(t *testing.T) {
	t.Parallel()
	root := machineTree(t, "qemu-virtio")
	ran := 0
	m := collectTree(t, root, Options{
		Addresses: func(name string) (string, string) { return "192.168.122.15", "fe80::5054:ff:fe12:3456" },
		Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			ran++
			return nil, errors.New("unexpected")
		},
	})
	if ran != 0 {
		t.Errorf("ipmitool ran %d times on a machine without an IPMI device", ran)
	}
	inv := m.Inventory
	checkFlags(t, &inv, 112, "hypervisor", "avx512f", "la57")
	want := agentwire.Inventory{
		Interfaces: []agentwire.Interface{
			// virtio: IPA's vendor and product are the virtio device's, the
			// PCI address its transport's; speed -1 is unknown.
			{Name: "eth0", MACAddress: "52:54:00:12:34:56", IPv4Address: "192.168.122.15",
				IPv6Address: "fe80::5054:ff:fe12:3456", HasCarrier: true, Vendor: "0x1af4", Product: "0x0001",
				Driver: "virtio_net", PCIAddress: "0000:00:03.0"},
		},
		CPU: &agentwire.CPU{Count: 4, Architecture: "x86_64", ModelName: "Intel Xeon Processor (Icelake)",
			Frequency: "2294.608", SocketCount: 2},
		// No memory blocks: the total, rounded up to a MiB.
		Memory: &agentwire.Memory{Total: 8136820 << 10, PhysicalMB: 7947},
		Disks: []agentwire.Disk{
			{Name: "/dev/vda", Size: 41943040 * 512, Vendor: "0x1af4", Serial: "vm-root-0001", Rotational: true,
				ByPath: "/dev/disk/by-path/pci-0000:00:04.0", LogicalSectors: 512, PhysicalSectors: 512, Tran: "virtio"},
			{Name: "/dev/vdb", Size: 209715200 * 512, Vendor: "0x1af4", Rotational: true,
				ByPath: "/dev/disk/by-path/pci-0000:00:05.0", LogicalSectors: 512, PhysicalSectors: 512, Tran: "virtio"},
		},
		// An empty DMI serial number is left out.
		SystemVendor: &agentwire.SystemVendor{ProductName: "Standard PC (i440FX + PIIX, 1996)", Manufacturer: "QEMU"},
		Boot:         &agentwire.Boot{CurrentBootMode: "bios"},
		Hostname:     "vm-test-1",
	}
	diffJSON(t, "inventory", inv, want)
	checkServerAccepts(t, m.Inventory)
}

// this-machine.tree is TestRecordThisMachine's recording of the machine
// this package was written on, a Firecracker VM: no DMI, no memory block
// offline, one virtio disk and NIC, other interfaces virtual.
func TestCollectRecordedThisMachine(t *testing.T) {
	t.Parallel()
	root := machineTree(t, "this-machine")
	m := collectTree(t, root, Options{})
	inv := m.Inventory
	checkFlags(t, &inv, 106, "avx512f", "hypervisor")
	want := agentwire.Inventory{
		Interfaces: []agentwire.Interface{
			{Name: "eth0", MACAddress: "02:fc:00:00:00:01", HasCarrier: true, Vendor: "0x1af4", Product: "0x0001",
				Driver: "virtio_net", PCIAddress: "0000:00:03.0"},
		},
		CPU:    &agentwire.CPU{Count: 2, Architecture: "x86_64", ModelName: "AMD EPYC", Frequency: "2596.122", SocketCount: 1},
		Memory: &agentwire.Memory{Total: 24683584 << 10, PhysicalMB: 192 * 128},
		Disks: []agentwire.Disk{
			{Name: "/dev/vda", Size: 536870912 * 512, Vendor: "0x1af4", Serial: "overlayblk", Rotational: true,
				ByPath: "/dev/disk/by-path/pci-0000:00:02.0", LogicalSectors: 512, PhysicalSectors: 4096, Tran: "virtio"},
		},
		Boot:     &agentwire.Boot{CurrentBootMode: "bios"},
		Hostname: "vm",
	}
	diffJSON(t, "inventory", inv, want)
	checkServerAccepts(t, m.Inventory)
}

// RecordTree copies what Collect reads so faithfully that the copy gives
// the same machine.
func TestRecordTreeReproducesTheMachine(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"dell-r640-sata", "altra-nvme"} {
		t.Run(name, func(t *testing.T) {
			root := machineTree(t, name)
			copyDir := filepath.Join(t.TempDir(), "copy")
			opts := Options{Root: root, Run: TreeRunner(root), BootMAC: "b8:ce:f6:11:22:30"}
			original, err := RecordTree(context.Background(), opts, copyDir)
			if err != nil {
				t.Fatal(err)
			}
			opts.Root, opts.Run = copyDir, TreeRunner(copyDir)
			replayed, err := Collect(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			diffJSON(t, "inventory of the copy", replayed.Inventory, original.Inventory)
			for i := range replayed.Disks {
				if want := filepath.Join(copyDir, "dev", filepath.Base(replayed.Disks[i].Name)); replayed.Disks[i].Path != want {
					t.Errorf("disk path %q, want %q", replayed.Disks[i].Path, want)
				}
			}
			// The copy keeps sysfs's links, not copies of their targets.
			target, err := os.Readlink(filepath.Join(copyDir, "sys/block", strings.TrimPrefix(original.Inventory.Disks[0].Name, "/dev/")))
			if err != nil || !strings.HasPrefix(target, "../devices/") {
				t.Errorf("sys/block link in the copy: %q, %v", target, err)
			}
		})
	}
	t.Run("running machine", func(t *testing.T) {
		if runtime.GOOS != "linux" || !anyPhysicalInterface() {
			t.Skip("needs Linux with a physical interface")
		}
		addresses := func(string) (string, string) { return "192.0.2.1", "" }
		copyDir := filepath.Join(t.TempDir(), "copy")
		original, err := RecordTree(context.Background(), Options{Addresses: addresses}, copyDir)
		if err != nil {
			t.Fatal(err)
		}
		replayed, err := Collect(context.Background(), Options{Root: copyDir, Addresses: addresses, Run: TreeRunner(copyDir)})
		if err != nil {
			t.Fatal(err)
		}
		diffJSON(t, "inventory of the copy", replayed.Inventory, original.Inventory)
	})
	if _, err := RecordTree(context.Background(), Options{Root: machineTree(t, "qemu-virtio")}, machineTree(t, "qemu-virtio")); err == nil {
		t.Error("RecordTree into a directory that is not empty succeeded")
	}
}

func TestCollectRefuses(t *testing.T) {
	t.Parallel()
	root := extractTree(t, "qemu-virtio")
	if _, err := Collect(context.Background(), Options{Root: root, BootMAC: "01-52-54-00-12-34"}); err == nil || !strings.Contains(err.Error(), "BOOTIF") {
		t.Errorf("bad BOOTIF: %v", err)
	}
	if _, err := Collect(context.Background(), Options{Root: t.TempDir()}); err == nil {
		t.Error("an empty root is a machine")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(ctx, Options{Root: root}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if err := os.Remove(filepath.Join(root, "sys/class/net/eth0")); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(context.Background(), Options{Root: root}); !errors.Is(err, errNoInterfaces) {
		t.Errorf("no physical interface: %v", err)
	}
}

// Two interfaces with one MAC would make the server refuse the lookup:
// the first stands for both.
func TestCollectDropsRepeatedMAC(t *testing.T) {
	t.Parallel()
	root := extractTree(t, "altra-nvme")
	addr := filepath.Join(root, "sys/devices/pci000c:00/000c:00:01.0/000c:01:00.1/net/eth1/address")
	if err := os.WriteFile(addr, []byte("B8:CE:F6:11:22:30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := collectTree(t, root, Options{})
	if len(m.Inventory.Interfaces) != 1 || m.Inventory.Interfaces[0].Name != "eth0" {
		t.Errorf("interfaces %+v, want eth0 alone", m.Inventory.Interfaces)
	}
	checkServerAccepts(t, m.Inventory)
}

func TestParseBOOTIF(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"01-AA-bb-cc-dd-ee-ff": "aa:bb:cc:dd:ee:ff",
		"aa:bb:cc:dd:ee:ff":    "aa:bb:cc:dd:ee:ff",
		" aa-bb-cc-dd-ee-ff ":  "aa:bb:cc:dd:ee:ff",
		"aabb.ccdd.eeff":       "aa:bb:cc:dd:ee:ff",
	} {
		if got, err := ParseBOOTIF(in); err != nil || got != want {
			t.Errorf("ParseBOOTIF(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "01-aa-bb-cc-dd-ee", "20-aa-bb-cc-dd-ee-ff-00", "zz:bb:cc:dd:ee:ff",
		"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"} {
		if got, err := ParseBOOTIF(in); err == nil {
			t.Errorf("ParseBOOTIF(%q) = %q, want an error", in, got)
		}
	}
}

// The machine running the test, read live.
func TestCollectRunningMachine(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's sysfs and procfs")
	}
	if !anyPhysicalInterface() {
		t.Skip("no network interface with a device here (a container's veth): nothing to be found by")
	}
	m, err := Collect(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := m.Inventory
	if len(inv.Interfaces) == 0 {
		t.Fatal("no interface")
	}
	for _, iface := range inv.Interfaces {
		if hw, err := net.ParseMAC(iface.MACAddress); err != nil || len(hw) != 6 {
			t.Errorf("interface %s: MAC %q", iface.Name, iface.MACAddress)
		}
	}
	if online := onlineCPUs(t); inv.CPU.Count != online {
		t.Errorf("cpu.count %d, but %d CPUs are online", inv.CPU.Count, online)
	}
	if inv.CPU.Count < runtime.NumCPU() {
		t.Errorf("cpu.count %d < runtime.NumCPU() %d", inv.CPU.Count, runtime.NumCPU())
	}
	if want := linuxArch(runtime.GOARCH); inv.CPU.Architecture != want {
		t.Errorf("cpu.architecture %q, want %q", inv.CPU.Architecture, want)
	}
	if inv.Memory.Total <= 0 || inv.Memory.PhysicalMB*(1<<20) < inv.Memory.Total/2 {
		t.Errorf("memory %+v", inv.Memory)
	}
	for i, d := range inv.Disks {
		if d.Size <= 0 || !strings.HasPrefix(d.Name, "/dev/") || m.Disks[i].Path != d.Name {
			t.Errorf("disk %+v, path %q", d, m.Disks[i].Path)
		}
	}
	checkServerAccepts(t, inv)
}

func anyPhysicalInterface() bool {
	names, _ := os.ReadDir("/sys/class/net")
	for _, n := range names {
		if _, err := os.Stat(filepath.Join("/sys/class/net", n.Name(), "device")); err == nil {
			return true
		}
	}
	return false
}

// onlineCPUs counts /sys/devices/system/cpu/online ("0-3,8"), a source
// Collect does not read.
func onlineCPUs(t *testing.T) int {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(data)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("cpu/online %q", data)
		}
		n += b - a + 1
	}
	return n
}
