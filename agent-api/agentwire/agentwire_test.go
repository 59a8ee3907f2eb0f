package agentwire_test

import (
	"encoding/json"
	"testing"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor/inventory"
)

// TestInventoryParsesStrictly sends an inventory with every member set
// through the server's strict native parser: a member the server does not
// know would be refused there (400), so the agent's type cannot drift.
func TestInventoryParsesStrictly(t *testing.T) {
	inv := agentwire.Inventory{
		Interfaces: []agentwire.Interface{{Name: "eno1", MACAddress: "52:54:00:12:34:56", IPv4Address: "10.0.2.15",
			IPv6Address: "fe80::1", HasCarrier: true, Vendor: "0x8086", Product: "0x10d3", Driver: "e1000e",
			SpeedMbps: 1000, PCIAddress: "0000:00:03.0"}},
		CPU:    &agentwire.CPU{Count: 4, Architecture: "x86_64", ModelName: "Xeon", Frequency: "2400.0000", Flags: []string{"vmx"}, SocketCount: 1},
		Memory: &agentwire.Memory{Total: 8 << 30, PhysicalMB: 8192},
		Disks: []agentwire.Disk{{Name: "/dev/sda", Size: 64 << 30, Model: "QEMU HARDDISK", Vendor: "ATA", Serial: "QM0001",
			WWN: "0x5000c500a1b2c3d4", WWNWithExtension: "0x5000c500a1b2c3d4", WWNVendorExtension: "0x1", Rotational: true,
			HCTL: "0:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:00:1f.2-ata-1", LogicalSectors: 512, PhysicalSectors: 4096,
			Tran: "sata", ReadOnly: false, Removable: false}},
		BMCAddress: "10.10.0.15", BMCv6Address: "fd00::15", BMCMAC: "52:54:00:aa:bb:cc",
		SystemVendor: &agentwire.SystemVendor{ProductName: "Standard PC", SerialNumber: "SN-1", Manufacturer: "QEMU"},
		Boot:         &agentwire.Boot{CurrentBootMode: "bios", PXEInterface: "52:54:00:12:34:56"},
		Hostname:     "ferric-agent",
	}
	body, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	data, err := inventory.Parse(body, inventory.FormatNative)
	if err != nil {
		t.Fatalf("the server refuses the agent's inventory: %v\n%s", err, body)
	}
	if got := *data.Inventory.SystemVendor.SerialNumber; got != "SN-1" {
		t.Errorf("serial number parsed as %q", got)
	}
	props := inventory.Properties(data)
	if props["cpus"] != int64(4) || props["memory_mb"] != int64(8192) || props["local_gb"] != int64(63) {
		t.Errorf("properties from the agent's inventory: %v", props)
	}
}
