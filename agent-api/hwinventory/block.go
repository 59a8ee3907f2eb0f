package hwinventory

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/disks"
)

// blockDevice is a disk as both views have it.
type blockDevice struct {
	disks.Disk
	logicalSectors, physicalSectors int
	tran                            string
}

func (d blockDevice) wire() agentwire.Disk {
	return agentwire.Disk{
		Name: d.Name, Size: d.Size, Model: d.Model, Vendor: d.Vendor, Serial: d.Serial,
		WWN: d.WWN, WWNWithExtension: d.WWNWithExtension, WWNVendorExtension: d.WWNVendorExtension,
		Rotational: d.Rotational, HCTL: d.HCTL, ByPath: d.ByPath,
		LogicalSectors: d.logicalSectors, PhysicalSectors: d.physicalSectors, Tran: d.tran,
		ReadOnly: d.ReadOnly, Removable: d.Removable,
	}
}

// notDisks are the kernel's names of block devices that are not hardware
// (or, for sr and fd, not disks), which IPA's lsblk filter drops too.
// Software RAID (md) and device-mapper (dm) devices are left out as well:
// IPA lists assembled arrays and multipath maps, but this agent assembles
// neither and inventories the disks beneath.
var notDisks = []string{"loop", "ram", "zram", "dm-", "md", "nbd", "drbd", "sr", "fd"}

// disks lists the whole disks under sys/block, in name order.
func (c *collector) disks() ([]blockDevice, error) {
	names, err := c.t.list("sys/block")
	if err != nil {
		return nil, fmt.Errorf("listing block devices: %w", err)
	}
	byPath := c.udevByPath()
	var out []blockDevice
	for _, name := range names {
		if slices.ContainsFunc(notDisks, func(prefix string) bool { return strings.HasPrefix(name, prefix) }) {
			continue
		}
		if d, ok := c.disk(name, byPath); ok {
			out = append(out, d)
		}
	}
	// sda < sdb < sdaa, nvme2n1 < nvme10n1, as the kernel numbers them.
	slices.SortFunc(out, func(a, b blockDevice) int {
		return cmp.Or(cmp.Compare(len(a.Name), len(b.Name)), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// disk reads one block device; false for what is not a disk to inventory.
func (c *collector) disk(name string, udevPaths map[string][]string) (blockDevice, bool) {
	dir := path.Join("sys/block", name)
	resolved, err := c.t.resolve(dir)
	if err != nil {
		return blockDevice{}, false
	}
	sectors, err := strconv.ParseInt(c.t.attr(path.Join(dir, "size")), 10, 64)
	if err != nil || sectors <= 0 {
		return blockDevice{}, false // empty card readers, virtual floppies
	}
	if c.t.attr(path.Join(dir, "hidden")) == "1" {
		return blockDevice{}, false // an NVMe multipath member; the head is listed
	}
	if typ := c.t.attr(path.Join(dir, "device/type")); typ != "" && typ != "0" {
		return blockDevice{}, false // a SCSI device that is not a disk (CD-ROM, tape...)
	}
	d := blockDevice{Disk: disks.Disk{
		Name:       "/dev/" + name,
		Path:       c.t.abs("dev/" + name),
		Size:       sectors * 512, // size counts 512-byte sectors whatever the disk's
		Vendor:     c.t.attr(path.Join(dir, "device/vendor")),
		Model:      c.t.attr(path.Join(dir, "device/model")),
		Rotational: c.t.attr(path.Join(dir, "queue/rotational")) == "1",
		ReadOnly:   c.t.attr(path.Join(dir, "ro")) == "1",
		Removable:  c.t.attr(path.Join(dir, "removable")) == "1",
	}}
	d.logicalSectors, _ = strconv.Atoi(c.t.attr(path.Join(dir, "queue/logical_block_size")))
	d.physicalSectors, _ = strconv.Atoi(c.t.attr(path.Join(dir, "queue/physical_block_size")))
	if hctls, err := c.t.list(path.Join(dir, "device/scsi_device")); err == nil && len(hctls) > 0 {
		d.HCTL = hctls[0]
	}
	d.tran = c.transport(name, dir, d.HCTL)
	c.identify(&d, dir)
	d.ByPath = c.byPath(name, resolved, udevPaths)
	return d, true
}

// identify sets the serial number, WWN and (for ATA disks, whose SCSI
// model attribute is cut to 16 characters) the model, as udev's ata_id,
// scsi_id and persistent-storage rules would.
func (c *collector) identify(d *blockDevice, dir string) {
	if pg80 := c.t.attrBytes(path.Join(dir, "device/vpd_pg80")); pg80 != nil {
		d.Serial = unitSerialNumber(pg80)
	}
	if pg83 := c.t.attrBytes(path.Join(dir, "device/vpd_pg83")); pg83 != nil {
		ids := parseVPD83(pg83)
		d.WWN, d.WWNVendorExtension = ids.wwn, ids.wwnVendorExtension
		if d.Vendor == "ATA" && ids.ataModel != "" {
			d.Model = ids.ataModel
		}
	} else if d.HCTL != "" {
		// No VPD page: the kernel's own choice of designator.
		d.WWN, d.WWNVendorExtension = wwidToWWN(c.t.attr(path.Join(dir, "device/wwid")))
	}
	if d.WWN != "" {
		d.WWNWithExtension = d.WWN + strings.TrimPrefix(d.WWNVendorExtension, "0x")
	}
	if strings.HasPrefix(d.Name, "/dev/nvme") {
		// udev: ID_WWN is the namespace's wwid as the kernel prints it.
		d.WWN = c.t.attr(path.Join(dir, "wwid"))
	}
	if d.Serial == "" {
		d.Serial = cmp.Or(
			c.t.attr(path.Join(dir, "serial")),        // virtio-blk
			c.t.attr(path.Join(dir, "device/serial")), // NVMe controller or subsystem, MMC
			c.usbSerial(dir),
		)
	}
}

// usbSerial is the serial number of the USB device a disk belongs to
// (udev's usb_id): USB storage rarely answers VPD inquiries.
func (c *collector) usbSerial(dir string) string {
	resolved, err := c.t.resolve(dir)
	if err != nil {
		return ""
	}
	dev, ok := c.device(resolved)
	if !ok {
		return ""
	}
	if usb, ok := c.ancestor(dev, "usb", "usb_device"); ok {
		return c.t.attr(path.Join(usb.path, "serial"))
	}
	return ""
}

// transport is lsblk's TRAN, which IPA reports.
func (c *collector) transport(name, dir, hctl string) string {
	if hctl == "" {
		switch {
		case strings.HasPrefix(name, "nvme"):
			return "nvme"
		case strings.HasPrefix(name, "vd"):
			return "virtio"
		case strings.HasPrefix(name, "mmcblk"):
			return "mmc"
		}
		return ""
	}
	host, _, _ := strings.Cut(hctl, ":")
	host = "host" + host
	hostIs := func(kind string) bool { return c.t.exists(path.Join("sys/class", kind+"_host", host)) }
	device, _ := c.t.resolve(path.Join(dir, "device"))
	switch {
	case hostIs("spi"):
		return "spi"
	case hostIs("fc"):
		if strings.Contains(c.t.attr(path.Join("sys/class/fc_host", host, "symbolic_name")), " over ") {
			return "fcoe"
		}
		return "fc"
	case hostIs("sas") || c.t.exists(path.Join(dir, "device/sas_device")):
		return "sas"
	case c.t.exists(path.Join(dir, "device/ieee1394_id")):
		return "sbp"
	case hostIs("iscsi"):
		return "iscsi"
	case strings.Contains(device, "usb"):
		return "usb"
	}
	proc := c.t.attr(path.Join("sys/class/scsi_host", host, "proc_name"))
	switch {
	case strings.HasPrefix(proc, "ahci"), strings.HasPrefix(proc, "sata"):
		return "sata"
	case strings.Contains(proc, "ata"):
		return "ata"
	}
	return ""
}
