package hwinventory

import (
	"fmt"
	"net"
	"path"
	"strconv"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
)

// interfaces lists the physical network interfaces: those with a device
// link, as IPA's list_interfaces has them. Unlike IPA, bonds and VLANs are
// left out: they repeat their members' MAC addresses, which a native lookup
// refuses, and the agent's ramdisk creates none.
func (c *collector) interfaces() ([]agentwire.Interface, error) {
	names, err := c.t.list("sys/class/net")
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	var out []agentwire.Interface
	seen := map[string]string{}
	for _, name := range names {
		dir := path.Join("sys/class/net", name)
		if !c.t.exists(path.Join(dir, "device")) {
			continue
		}
		mac := c.t.attr(path.Join(dir, "address"))
		if hw, err := net.ParseMAC(mac); err == nil {
			mac = hw.String()
		}
		if mac == "" || mac == "00:00:00:00:00:00" {
			c.log.Info("network interface without an address skipped", "interface", name)
			continue
		}
		if other, dup := seen[mac]; dup {
			// The server refuses a lookup with a MAC twice; the first
			// interface stands for both.
			c.log.Warn("network interface with the MAC address of another skipped", "interface", name, "mac", mac, "other", other)
			continue
		}
		seen[mac] = name
		iface := agentwire.Interface{
			Name:       name,
			MACAddress: mac,
			// Reading carrier on a link that is down fails: no carrier.
			HasCarrier: c.t.attr(path.Join(dir, "carrier")) == "1",
			Vendor:     c.t.attr(path.Join(dir, "device/vendor")),
			Product:    c.t.attr(path.Join(dir, "device/device")),
			Driver:     c.t.linkBase(path.Join(dir, "device/driver")),
			PCIAddress: c.pciAddress(path.Join(dir, "device")),
		}
		if speed, err := strconv.Atoi(c.t.attr(path.Join(dir, "speed"))); err == nil && speed > 0 {
			iface.SpeedMbps = speed
		}
		if c.opts.Addresses != nil {
			iface.IPv4Address, iface.IPv6Address = c.opts.Addresses(name)
		}
		out = append(out, iface)
	}
	if len(out) == 0 {
		return nil, errNoInterfaces
	}
	if c.bootMAC != "" {
		if _, ok := seen[c.bootMAC]; !ok {
			c.log.Warn("the BOOTIF MAC address is not one of the interfaces'", "mac", c.bootMAC)
		}
	}
	return out, nil
}

// pciAddress is the PCI address of the device at rel or of the PCI device
// it belongs to (a virtio device's transport), "" for devices on other
// buses (USB). IPA sends the device link's name, which for virtio is
// "virtio0", not an address.
func (c *collector) pciAddress(rel string) string {
	resolved, err := c.t.resolve(rel)
	if err != nil {
		return ""
	}
	for dev, ok := c.device(resolved); ok; dev, ok = c.parentDevice(dev) {
		switch dev.subsystem {
		case "pci":
			return path.Base(dev.path)
		case "virtio":
			continue
		}
		return ""
	}
	return ""
}
