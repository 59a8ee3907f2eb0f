package agentwire

// Inventory is the body of POST /v1/lookup: the machine's hardware in
// ironic-python-agent's inventory shape. The server parses it strictly
// (conductor/inventory, FormatNative): a member it does not know is a 400,
// which the round-trip test of this package guards against.
type Inventory struct {
	Interfaces   []Interface   `json:"interfaces"`
	CPU          *CPU          `json:"cpu,omitempty"`
	Memory       *Memory       `json:"memory,omitempty"`
	Disks        []Disk        `json:"disks,omitempty"`
	BMCAddress   string        `json:"bmc_address,omitempty"`
	BMCv6Address string        `json:"bmc_v6address,omitempty"`
	BMCMAC       string        `json:"bmc_mac,omitempty"`
	SystemVendor *SystemVendor `json:"system_vendor,omitempty"`
	Boot         *Boot         `json:"boot,omitempty"`
	Hostname     string        `json:"hostname,omitempty"`
}

// Interface is a network interface.
type Interface struct {
	Name        string `json:"name"`
	MACAddress  string `json:"mac_address"`
	IPv4Address string `json:"ipv4_address,omitempty"`
	IPv6Address string `json:"ipv6_address,omitempty"`
	HasCarrier  bool   `json:"has_carrier"`
	Vendor      string `json:"vendor,omitempty"`  // PCI vendor ID, 0x8086
	Product     string `json:"product,omitempty"` // PCI device ID
	Driver      string `json:"driver,omitempty"`
	SpeedMbps   int    `json:"speed_mbps,omitempty"`
	PCIAddress  string `json:"pci_address,omitempty"`
}

// CPU is the processor section.
type CPU struct {
	Count        int      `json:"count"`
	Architecture string   `json:"architecture"` // x86_64, aarch64
	ModelName    string   `json:"model_name,omitempty"`
	Frequency    string   `json:"frequency,omitempty"` // MHz, a string as IPA sends it ("3900.0000")
	Flags        []string `json:"flags,omitempty"`
	SocketCount  int      `json:"socket_count,omitempty"`
}

// Memory is the memory section.
type Memory struct {
	Total      int64 `json:"total"`       // bytes the kernel manages
	PhysicalMB int64 `json:"physical_mb"` // MiB installed
}

// Disk is a block device.
type Disk struct {
	Name               string `json:"name"` // /dev/sda
	Size               int64  `json:"size"` // bytes
	Model              string `json:"model,omitempty"`
	Vendor             string `json:"vendor,omitempty"`
	Serial             string `json:"serial,omitempty"`
	WWN                string `json:"wwn,omitempty"`
	WWNWithExtension   string `json:"wwn_with_extension,omitempty"`
	WWNVendorExtension string `json:"wwn_vendor_extension,omitempty"`
	Rotational         bool   `json:"rotational"`
	HCTL               string `json:"hctl,omitempty"`
	ByPath             string `json:"by_path,omitempty"` // /dev/disk/by-path/...
	LogicalSectors     int    `json:"logical_sectors,omitempty"`
	PhysicalSectors    int    `json:"physical_sectors,omitempty"`
	Tran               string `json:"tran,omitempty"` // sata, nvme, virtio...
	ReadOnly           bool   `json:"read_only"`
	Removable          bool   `json:"removable"`
}

// SystemVendor identifies the machine (DMI).
type SystemVendor struct {
	ProductName  string `json:"product_name,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
}

// Boot says how the agent was booted.
type Boot struct {
	CurrentBootMode string `json:"current_boot_mode"`       // uefi or bios
	PXEInterface    string `json:"pxe_interface,omitempty"` // the MAC that booted (BOOTIF)
}
