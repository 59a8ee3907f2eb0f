package hwinventory

import "github.com/ferric-metal/ferric/agent-api/agentwire"

// systemVendor reads DMI as the firmware wrote it, placeholders ("To Be
// Filled By O.E.M.") included: the server knows to ignore those. Reading
// product_serial needs root; unprivileged, it is left out.
func (c *collector) systemVendor() *agentwire.SystemVendor {
	const dmi = "sys/class/dmi/id/"
	v := &agentwire.SystemVendor{
		Manufacturer: c.t.attr(dmi + "sys_vendor"),
		ProductName:  c.t.attr(dmi + "product_name"),
		SerialNumber: c.t.attr(dmi + "product_serial"),
	}
	if *v == (agentwire.SystemVendor{}) {
		return nil // no DMI: a device-tree machine, or a VM without SMBIOS
	}
	return v
}

// boot says how the machine booted: UEFI when the kernel has EFI runtime
// services (sys/firmware/efi), as IPA decides.
func (c *collector) boot() *agentwire.Boot {
	b := &agentwire.Boot{CurrentBootMode: "bios", PXEInterface: c.bootMAC}
	if c.t.isDir("sys/firmware/efi") {
		b.CurrentBootMode = "uefi"
	}
	return b
}

// hostname is the kernel's, unless the options say otherwise; "(none)" is
// the kernel's word for unset.
func (c *collector) hostname() string {
	if c.opts.Hostname != "" {
		return c.opts.Hostname
	}
	if name := c.t.attr("proc/sys/kernel/hostname"); name != "(none)" {
		return name
	}
	return ""
}
