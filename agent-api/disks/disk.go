package disks

// Disk is a block device of the machine the agent runs on (or, under
// simulation, a file standing in for one).
type Disk struct {
	Name string // the kernel's name as the inventory shows it: /dev/sda
	// Path is what is opened to read and write the disk: the device node
	// (usually Name) or, under simulation, the backing file.
	Path               string
	Size               int64 // bytes
	Model              string
	Vendor             string
	Serial             string
	WWN                string
	WWNWithExtension   string
	WWNVendorExtension string
	Rotational         bool
	HCTL               string // 0:0:0:0 for SCSI and SATA disks
	ByPath             string // /dev/disk/by-path/...
	ReadOnly           bool
	Removable          bool
}
