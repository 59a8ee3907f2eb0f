package hwinventory

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

const byPathDir = "dev/disk/by-path"

// udevByPath maps device names (sda) to the /dev/disk/by-path links udev
// made to them, nil when udev did not run.
func (c *collector) udevByPath() map[string][]string {
	names, err := c.t.list(byPathDir)
	if err != nil {
		return nil
	}
	links := map[string][]string{}
	for _, name := range names {
		target, err := c.t.readlink(path.Join(byPathDir, name))
		if err != nil {
			continue
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join("/", byPathDir, target)
		}
		if dir, dev := path.Split(path.Clean(target)); dir == "/dev/" {
			links[dev] = append(links[dev], name)
		}
	}
	return links
}

// byPath is a disk's /dev/disk/by-path name: udev's when udev ran (the
// computed one if it is among them, else the longest, which for ATA is
// ID_PATH rather than the compatibility link), otherwise what udev's
// path_id would compose.
func (c *collector) byPath(name, resolved string, udevPaths map[string][]string) string {
	computed, ok := c.pathID(resolved)
	if links := udevPaths[name]; len(links) > 0 {
		if ok && slices.Contains(links, computed) {
			return "/dev/disk/by-path/" + computed
		}
		var best string
		for _, l := range links {
			if !strings.HasPrefix(l, "virtio-") && (len(l) > len(best) || len(l) == len(best) && l < best) {
				best = l
			}
		}
		if best != "" {
			return "/dev/disk/by-path/" + best
		}
	}
	if !ok {
		return ""
	}
	return "/dev/disk/by-path/" + computed
}

// pathID composes ID_PATH for the block device at the resolved path rel,
// walking up the device tree as udev's path_id builtin does, for the buses
// a server's disks hang off: PCI, virtio, NVMe (multipath heads included),
// ATA, SAS, USB and plain SCSI, plus platform and ACPI parents. Fibre
// Channel, iSCSI and Hyper-V disks get none (false), as does anything
// path_id would refuse.
func (c *collector) pathID(rel string) (string, bool) {
	dev, ok := c.device(rel)
	if !ok {
		return "", false
	}
	var parts []string
	prepend := func(format string, args ...any) { parts = append([]string{fmt.Sprintf(format, args...)}, parts...) }
	supportedTransport, supportedParent := false, false
	for parent := dev; ok; parent, ok = c.parentDevice(parent) {
		switch parent.subsystem {
		case "scsi":
			parent, ok = c.pathSCSI(parent, prepend)
			supportedTransport = true
		case "usb":
			parent, ok = c.pathUSB(parent, prepend)
			supportedTransport = true
		case "pci", "platform", "acpi", "amba":
			prepend("%s-%s", parent.subsystem, parent.name())
			supportedParent = true
			supportedTransport = supportedTransport || parent.subsystem == "platform" || parent.subsystem == "amba"
			parent = c.skipSubsystem(parent, parent.subsystem)
		case "virtio":
			parent = c.skipSubsystem(parent, "virtio")
			supportedTransport = true
		case "nvme", "nvme-subsystem":
			nsid := c.t.attr(path.Join(dev.path, "nsid"))
			if nsid == "" {
				break
			}
			prepend("nvme-%s", nsid)
			if parent.subsystem == "nvme-subsystem" {
				if parent, ok = c.realNVMeController(dev); !ok {
					return "", false
				}
			}
			parent = c.skipSubsystem(parent, "nvme")
			supportedParent, supportedTransport = true, true
		}
		if !ok {
			break
		}
	}
	if len(parts) == 0 || !supportedParent || !supportedTransport {
		return "", false
	}
	return dropUSBRevision(strings.Join(parts, "-")), true
}

// skipSubsystem returns the topmost of the run of devices of subsystem
// that starts at d.
func (c *collector) skipSubsystem(d sysDevice, subsystem string) sysDevice {
	for p, ok := d, true; ok && p.subsystem == subsystem; p, ok = c.parentDevice(p) {
		d = p
	}
	return d
}

// realNVMeController finds the controller of a multipath NVMe namespace
// head (sys/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1): nvme0,
// named after the head, unless it too is virtual (NVMe over fabrics).
func (c *collector) realNVMeController(dev sysDevice) (sysDevice, bool) {
	name, ok := strings.CutPrefix(dev.name(), "nvme")
	if !ok {
		return sysDevice{}, false
	}
	digits := len(name) - len(strings.TrimLeft(name, "0123456789"))
	ctrl, ok := c.classDevice("nvme", "nvme"+name[:digits])
	if !ok || strings.HasPrefix(ctrl.path, "sys/devices/virtual/") {
		return sysDevice{}, false
	}
	return ctrl, true
}

// pathSCSI is path_id's handle_scsi for a SCSI device: the transport part
// of the path. It returns the device to continue from, false to stop.
func (c *collector) pathSCSI(d sysDevice, prepend func(string, ...any)) (sysDevice, bool) {
	if d.devtype != "scsi_device" {
		return d, true
	}
	syspath := "/" + d.path
	switch {
	case strings.Contains(syspath, "/rport-"), strings.Contains(syspath, "/session"),
		strings.Contains(syspath, "/vmbus_"), strings.Contains(syspath, "/VMBUS"):
		return d, false // Fibre Channel, iSCSI, Hyper-V: not composed here
	case strings.Contains(syspath, "/end_device-"):
		return c.pathSAS(d, prepend)
	case strings.Contains(syspath, "/ata"):
		return c.pathATA(d, prepend)
	}
	return c.pathSCSIHost(d, prepend)
}

// parseHCTL splits a SCSI device name, 0:0:0:0.
func parseHCTL(name string) (h, c, t, l int, ok bool) {
	fields := strings.Split(name, ":")
	if len(fields) != 4 {
		return 0, 0, 0, 0, false
	}
	var n [4]int
	for i, f := range fields {
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return 0, 0, 0, 0, false
		}
		n[i] = v
	}
	return n[0], n[1], n[2], n[3], true
}

// pathATA: "ata-<port>.<target>" (systemd 246 and later; older udev wrote
// "ata-<port>", which newer udev keeps as a compatibility link), where port
// is the ATA port's number on its controller, not the kernel's ataN.
func (c *collector) pathATA(d sysDevice, prepend func(string, ...any)) (sysDevice, bool) {
	_, bus, target, _, ok := parseHCTL(d.name())
	if !ok {
		return d, false
	}
	host, ok := c.ancestor(d, "scsi", "scsi_host")
	if !ok {
		return d, false
	}
	port, ok := c.parentDevice(host)
	if !ok {
		return d, false
	}
	portNo := c.t.attr(path.Join("sys/class/ata_port", port.name(), "port_no"))
	if portNo == "" {
		return d, false
	}
	if bus != 0 { // behind a port multiplier
		prepend("ata-%s.%d.0", portNo, bus)
	} else {
		prepend("ata-%s.%d", portNo, target)
	}
	return d, true
}

// pathSAS: "sas-phy<N>-lun-<L>" for a disk on an HBA's phy,
// "sas-exp<address>-phy<N>-lun-<L>" behind an expander, and
// "sas-<address>-lun-<L>" on a wide port.
func (c *collector) pathSAS(d sysDevice, prepend func(string, ...any)) (sysDevice, bool) {
	lun, ok := lunPart(d.name())
	if !ok {
		return d, false
	}
	target, ok := c.ancestor(d, "scsi", "scsi_target")
	if !ok {
		return d, false
	}
	endDevice, ok := c.parentDevice(target)
	if !ok {
		return d, false
	}
	sasDevice := path.Join("sys/class/sas_device", endDevice.name())
	port, ok := c.parentDevice(endDevice)
	if !ok {
		return d, false
	}
	phys := c.t.attr(path.Join("sys/class/sas_port", port.name(), "num_phys"))
	if phys == "" {
		return d, false
	}
	if phys != "1" {
		address := c.t.attr(path.Join(sasDevice, "sas_address"))
		if address == "" {
			return d, false
		}
		prepend("sas-%s-%s", address, lun)
		return d, true
	}
	phy := c.t.attr(path.Join(sasDevice, "phy_identifier"))
	if phy == "" {
		return d, false
	}
	if expander, ok := c.parentDevice(port); ok && c.t.exists(path.Join("sys/class/sas_device", expander.name())) {
		address := c.t.attr(path.Join("sys/class/sas_device", expander.name(), "sas_address"))
		if address == "" {
			return d, false
		}
		prepend("sas-exp%s-phy%s-%s", address, phy, lun)
		return d, true
	}
	prepend("sas-phy%s-%s", phy, lun)
	return d, true
}

// lunPart formats a SCSI device's LUN as path_id does.
func lunPart(hctl string) (string, bool) {
	_, _, _, lun, ok := parseHCTL(hctl)
	if !ok {
		return "", false
	}
	if lun < 256 {
		return fmt.Sprintf("lun-%d", lun), true
	}
	return fmt.Sprintf("lun-0x%04x%04x00000000", lun&0xffff, (lun>>16)&0xffff), true
}

// pathSCSIHost is path_id's fallback, "scsi-H:C:T:L" with the host number
// counted from the first host of the same parent (a USB stick is
// scsi-0:0:0:0 whatever host the kernel gave it).
func (c *collector) pathSCSIHost(d sysDevice, prepend func(string, ...any)) (sysDevice, bool) {
	host, ok := c.ancestor(d, "scsi", "scsi_host")
	if !ok {
		return d, false
	}
	h, ch, t, l, ok := parseHCTL(d.name())
	if !ok {
		return d, false
	}
	siblings, err := c.t.list(parentOf(host.path))
	if err != nil {
		return d, false
	}
	base := -1
	for _, name := range siblings {
		if n, err := strconv.Atoi(strings.TrimPrefix(name, "host")); err == nil && strings.HasPrefix(name, "host") && n >= 0 && (base < 0 || n < base) {
			base = n
		}
	}
	if base < 0 {
		return host, true
	}
	prepend("scsi-%d:%d:%d:%d", h-base, ch, t, l)
	return host, true
}

// pathUSB: "usbv<revision>-0:<port>" (the revision dropped from ID_PATH at
// the end), the host number replaced by 0 as udev does.
func (c *collector) pathUSB(d sysDevice, prepend func(string, ...any)) (sysDevice, bool) {
	if d.devtype != "usb_interface" && d.devtype != "usb_device" {
		return d, true
	}
	_, port, ok := strings.Cut(d.name(), "-")
	if !ok {
		return d, true
	}
	root := c.skipSubsystem(d, "usb")
	if rev := c.usbRevision(root); rev > 0 {
		prepend("usbv%d-0:%s", rev, port)
	} else {
		prepend("usb-0:%s", port)
	}
	return root, true
}

// usbRevision is a USB root hub's revision (1, 2 or 3) from its device
// protocol, 0 when unknown.
func (c *collector) usbRevision(hub sysDevice) int {
	protocol, err := strconv.ParseUint(c.t.attr(path.Join(hub.path, "bDeviceProtocol")), 16, 8)
	if err != nil {
		return 0
	}
	switch protocol {
	case 0: // full speed (USB 1) or high speed without TT (USB 2)
		if c.t.attr(path.Join(hub.path, "speed")) == "480" {
			return 2
		}
		return 1
	case 1, 2:
		return 2
	case 3:
		return 3
	}
	return 0
}

// dropUSBRevision turns ID_PATH_WITH_USB_REVISION into ID_PATH.
func dropUSBRevision(p string) string {
	i := strings.Index(p, "-usbv")
	if i < 0 || len(p) < i+7 || p[i+5] < '0' || p[i+5] > '9' || p[i+6] != '-' {
		return p
	}
	return p[:i+4] + p[i+6:]
}
