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
	// Interfaces maps the Ironic interfaces the driver implements (power,
	// management, vendor, inspect) to its name; the others are absent.
	Interfaces map[string]string
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
	info := DriverInfo{Name: d.Name(), Hosts: hosts, Interfaces: map[string]string{}}
	if info.Hosts == nil {
		info.Hosts = []string{}
	}
	if _, ok := d.(drivers.PowerSetter); ok {
		info.Interfaces["power"] = d.Name()
	}
	if _, ok := d.(drivers.BootDeviceSetter); ok {
		info.Interfaces["management"] = d.Name()
	}
	if _, ok := d.(drivers.NodeVendor); ok {
		info.Interfaces["vendor"] = d.Name()
	}
	if _, ok := d.(drivers.Inspector); ok {
		info.Interfaces["inspect"] = d.Name()
	}
	return info
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
