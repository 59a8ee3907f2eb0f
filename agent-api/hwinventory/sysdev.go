package hwinventory

import (
	"path"
	"strings"
)

// sysDevice is a device of the sysfs device tree: a directory under
// sys/devices with a uevent file (the directories between devices, such as
// .../block or .../nvme, are not devices).
type sysDevice struct {
	path      string // root-relative, links resolved
	subsystem string // the bus or class: pci, scsi, usb, block, nvme...
	devtype   string // uevent's DEVTYPE: scsi_device, usb_interface, disk...
}

func (d sysDevice) name() string { return path.Base(d.path) }

// device returns the device at the resolved path rel.
func (c *collector) device(rel string) (sysDevice, bool) {
	if !strings.HasPrefix(rel, "sys/devices/") {
		return sysDevice{}, false
	}
	uevent, err := c.t.read(path.Join(rel, "uevent"), maxAttrBytes)
	if err != nil {
		return sysDevice{}, false
	}
	d := sysDevice{path: rel, subsystem: c.t.linkBase(path.Join(rel, "subsystem"))}
	for _, line := range strings.Split(string(uevent), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVTYPE="); ok {
			d.devtype = v
		}
	}
	return d, true
}

// parentDevice returns the nearest device above d, as udev's
// sd_device_get_parent does.
func (c *collector) parentDevice(d sysDevice) (sysDevice, bool) {
	for dir := parentOf(d.path); strings.HasPrefix(dir, "sys/devices/"); dir = parentOf(dir) {
		if p, ok := c.device(dir); ok {
			return p, true
		}
	}
	return sysDevice{}, false
}

// ancestor returns the nearest device above d of the subsystem and devtype
// given, as sd_device_get_parent_with_subsystem_devtype does.
func (c *collector) ancestor(d sysDevice, subsystem, devtype string) (sysDevice, bool) {
	for p, ok := c.parentDevice(d); ok; p, ok = c.parentDevice(p) {
		if p.subsystem == subsystem && (devtype == "" || p.devtype == devtype) {
			return p, true
		}
	}
	return sysDevice{}, false
}

// classDevice returns the device a class or bus lists under a name
// (sys/class/ata_port/ata1), as sd_device_new_from_subsystem_sysname does.
func (c *collector) classDevice(class, name string) (sysDevice, bool) {
	resolved, err := c.t.resolve(path.Join("sys/class", class, name))
	if err != nil {
		return sysDevice{}, false
	}
	return c.device(resolved)
}
