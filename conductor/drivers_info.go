package conductor

import (
	"context"
	"strings"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// DriverInfo describes an enabled driver for the operator API.
type DriverInfo struct {
	Name  string
	Hosts []string // live conductors serving the driver, sorted
	// Interfaces lists, for each of Ironic's hardware interfaces, the
	// implementations the driver offers, its default first; an interface
	// the driver has no implementation of is absent.
	Interfaces map[string][]string
}

// ListDriverInfo returns the drivers enabled in this process, with the live
// conductors that serve each.
func (c *Conductor) ListDriverInfo(ctx context.Context) ([]DriverInfo, error) {
	hosts, err := store.AliveConductorsByDriver(ctx, c.db, conductorDeadAfter)
	if err != nil {
		return nil, err
	}
	names := c.drivers.EnabledNames()
	out := make([]DriverInfo, 0, len(names))
	for _, name := range names {
		d, _ := c.drivers.Get(name)
		out = append(out, describeDriver(d, hosts[name]))
	}
	return out, nil
}

// GetDriverInfo describes one enabled driver; others are not found.
func (c *Conductor) GetDriverInfo(ctx context.Context, name string) (DriverInfo, error) {
	d, ok := c.drivers.Get(name)
	if !ok {
		return DriverInfo{}, driverNotFound(name)
	}
	hosts, err := store.AliveConductorsByDriver(ctx, c.db, conductorDeadAfter)
	if err != nil {
		return DriverInfo{}, err
	}
	return describeDriver(d, hosts[name]), nil
}

func driverNotFound(name string) error {
	return fault.New(fault.NotFound, "Driver %s could not be found.", name)
}

func describeDriver(d drivers.Driver, hosts []string) DriverInfo {
	info := DriverInfo{Name: d.Name(), Hosts: hosts, Interfaces: driverInterfaces(d)}
	if info.Hosts == nil {
		info.Hosts = []string{}
	}
	return info
}

// raidLogicalDiskProperties are the properties a logical disk of a target
// RAID configuration may have, described as Ironic's RAID schema does.
var raidLogicalDiskProperties = map[string]string{
	"raid_level":               "RAID level for the logical disk. Valid values are 'JBOD', '0', '1', '2', '5', '6', '1+0', '5+0' and '6+0'. Required.",
	"size_gb":                  "Size in GiB (Integer) for the logical disk. Use 'MAX' as size_gb if this logical disk is supposed to use the rest of the space available. Required.",
	"volume_name":              "Name of the volume to be created. If this is not specified, it will be auto-generated. Optional.",
	"is_root_volume":           "Specifies whether this disk is a root volume. By default, this is False. Optional.",
	"share_physical_disks":     "Specifies whether other logical disks can share physical disks with this logical disk. By default, this is False. Optional.",
	"disk_type":                "The type of disk preferred. Valid values are 'hdd' and 'ssd'. If this is not specified, disk type will not be a selection criterion for choosing backing physical disks. Optional.",
	"interface_type":           "The interface type of disk. Valid values are 'sata', 'scsi' and 'sas'. If this is not specified, interface type will not be a selection criterion for choosing backing physical disks. Optional.",
	"number_of_physical_disks": "Number of physical disks to use for this logical disk. By default, the driver uses the minimum number of disks required for that RAID level. Optional.",
	"controller":               "Controller to use for this logical disk. If not specified, the driver will choose a suitable RAID controller on the bare metal node. Optional.",
	"physical_disks":           "The physical disks to use for this logical disk. If not specified, the driver will choose suitable physical disks to use. Optional.",
}

// DriverRAIDProperties returns the logical disk properties a target RAID
// configuration may give, for a driver whose default RAID interface
// configures RAID; a driver without one is not found, as in Ironic.
func (c *Conductor) DriverRAIDProperties(name string) (map[string]string, error) {
	d, ok := c.drivers.Get(name)
	if !ok {
		return nil, driverNotFound(name)
	}
	if !configuresRAID(defaultInterface(d, "raid")) {
		return nil, unsupportedExtension(fault.NotFound, name, "raid")
	}
	return raidLogicalDiskProperties, nil
}

// configuresRAID tells a RAID implementation from no-raid.
func configuresRAID(impl string) bool { return impl != "" && impl != "no-raid" }

// unsupportedExtension is Ironic's UnsupportedDriverExtension: 400, or 404
// where Ironic answers that (RAID).
func unsupportedExtension(kind fault.Kind, driver, extension string) error {
	return fault.New(kind, "Driver %s does not support %s (disabled or not implemented).", driver, extension)
}

// DriverProperties returns the driver_info keys an enabled driver reads,
// each with a description ending in "Required." or "Optional.", as Ironic's.
func (c *Conductor) DriverProperties(name string) (map[string]string, error) {
	d, ok := c.drivers.Get(name)
	if !ok {
		return nil, driverNotFound(name)
	}
	out := map[string]string{}
	for _, p := range d.Properties() {
		desc := p.Description
		switch {
		case p.Required && !strings.Contains(desc, "Required."):
			desc = strings.TrimSpace(desc + " Required.")
		case !p.Required && !strings.Contains(desc, "Optional."):
			desc = strings.TrimSpace(desc + " Optional.")
		}
		out[p.Name] = desc
	}
	return out, nil
}

// InterfaceCheck is the result of validating one of a node's interfaces:
// Result nil means the interface is not supported.
type InterfaceCheck struct {
	Result *bool
	Reason *string
}

// validatedInterfaces are the interfaces GET .../validate reports, Ironic's.
var validatedInterfaces = []string{
	"bios", "boot", "console", "deploy", "firmware", "inspect", "management",
	"network", "power", "raid", "rescue", "storage",
}

// ValidateNode checks, without contacting the BMC, what the node's driver
// can do with its driver_info: power and management need the driver's
// capability and a valid driver_info; boot goes through management, and
// deploy needs both. Interfaces Ferric does not model are "not supported".
func (c *Conductor) ValidateNode(ctx context.Context, ident string) (map[string]InterfaceCheck, error) {
	n, err := c.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	out := map[string]InterfaceCheck{}
	for _, iface := range validatedInterfaces {
		out[iface] = unsupported()
	}
	d, ok := c.drivers.Get(n.Driver)
	if !ok {
		fail := failed("Driver " + n.Driver + " is not enabled on this service.")
		for _, iface := range []string{"power", "management", "boot", "deploy"} {
			out[iface] = fail
		}
		return out, nil
	}
	var infoErr *string
	if err := d.ValidateInfo(n.DriverInfo); err != nil {
		msg := "Invalid driver_info: " + err.Error()
		infoErr = &msg
	}
	capable := func(has bool) InterfaceCheck {
		switch {
		case !has:
			return unsupported()
		case infoErr != nil:
			return InterfaceCheck{Result: newRef(false), Reason: infoErr}
		}
		return InterfaceCheck{Result: newRef(true)}
	}
	_, power := d.(drivers.PowerSetter)
	_, mgmt := d.(drivers.BootDeviceSetter)
	_, inspect := d.(drivers.Inspector)
	out["power"] = capable(power)
	out["management"] = capable(mgmt)
	out["boot"] = capable(mgmt)
	out["inspect"] = capable(inspect)
	out["console"] = capable(consoleWorks(c.NodeInterface(n, "console")))
	out["raid"] = capable(configuresRAID(c.NodeInterface(n, "raid")))
	switch {
	case !power || !mgmt:
		out["deploy"] = failed("Deploying needs a driver with power and boot device control.")
	default:
		out["deploy"] = capable(true)
	}
	return out, nil
}

func unsupported() InterfaceCheck { return InterfaceCheck{Reason: newRef("not supported")} }

func failed(reason string) InterfaceCheck {
	return InterfaceCheck{Result: newRef(false), Reason: &reason}
}

func newRef[T any](v T) *T { return &v }
