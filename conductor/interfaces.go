package conductor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// HardwareInterfaces are Ironic's hardware interfaces at API 1.81, each a
// node field <name>_interface naming the implementation the node uses.
var HardwareInterfaces = []string{
	"bios", "boot", "console", "deploy", "inspect", "management",
	"network", "power", "raid", "rescue", "storage", "vendor",
}

// fakeDriver is the hardware type whose interfaces are all "fake", as
// Ironic's fake-hardware.
const fakeDriver = "fake"

// driverInterfaces lists, for each hardware interface, the implementations
// a driver offers, its default first, with Ironic's names: what the driver
// does itself (power, management, vendor, out-of-band inspection) under its
// name (ipmitool for ipmi), what the conductor does for every driver (boot
// by PXE, deploy and inspect through the agent: direct, agent), and the
// no-op ones Ironic has for what Ferric does not (no-console, no-raid, ...).
// The fake driver offers "fake" first for every interface, as Ironic's
// fake-hardware does; its fake console and RAID only record what is asked.
func driverInterfaces(d drivers.Driver) map[string][]string {
	own := d.Name()
	if own == "ipmi" {
		own = "ipmitool"
	}
	fake := d.Name() == fakeDriver
	withFake := func(impls ...string) []string {
		if fake {
			return append([]string{"fake"}, impls...)
		}
		return impls
	}
	out := map[string][]string{
		"bios":    withFake("no-bios"),
		"boot":    withFake("pxe"),
		"console": withFake("no-console"),
		"deploy":  withFake("direct"),
		"network": {"noop"},
		"raid":    withFake("no-raid"),
		"rescue":  withFake("no-rescue"),
		"storage": {"noop"},
	}
	if _, ok := d.(drivers.PowerSetter); ok {
		out["power"] = []string{own}
	}
	if _, ok := d.(drivers.BootDeviceSetter); ok {
		out["management"] = []string{own}
	}
	out["inspect"] = []string{"agent", "no-inspect"}
	if _, ok := d.(drivers.Inspector); ok {
		out["inspect"] = append([]string{own}, out["inspect"]...)
	}
	out["vendor"] = []string{"no-vendor"}
	if _, ok := d.(drivers.NodeVendor); ok {
		out["vendor"] = append([]string{own}, out["vendor"]...)
	}
	return out
}

// defaultInterface is the implementation a node of the driver uses for
// iface unless told otherwise; "" when the driver has none.
func defaultInterface(d drivers.Driver, iface string) string {
	if impls := driverInterfaces(d)[iface]; len(impls) > 0 {
		return impls[0]
	}
	return ""
}

// NodeInterface is the implementation the node uses for iface: the one
// recorded, else its driver's default; "" when neither is known (a driver
// not enabled here).
func (c *Conductor) NodeInterface(n *store.Node, iface string) string {
	if s, ok := n.Interfaces[iface].(string); ok && s != "" {
		return s
	}
	if d, ok := c.drivers.Get(n.Driver); ok {
		return defaultInterface(d, iface)
	}
	return ""
}

// resolveInterfaces checks the requested implementations (interface name to
// implementation; nil: the default) against what driver offers and returns
// the node's full set. Errors are Ironic's: an implementation no driver has
// is not found; one this driver lacks is not supported by it.
func (c *Conductor) resolveInterfaces(driver string, requested map[string]*string) (store.JSONObject, error) {
	d, ok := c.drivers.Get(driver)
	if !ok {
		return nil, noConductorFor(driver)
	}
	offered := driverInterfaces(d)
	out := store.JSONObject{}
	for _, iface := range HardwareInterfaces {
		impl := requested[iface]
		if impl == nil {
			if def := defaultInterface(d, iface); def != "" {
				out[iface] = def
			}
			continue
		}
		if !contains(offered[iface], *impl) {
			if known := c.knownImplementations(iface); !contains(known, *impl) {
				return nil, fault.New(fault.Invalid, "Could not find the following interface in the 'ironic.hardware.interfaces.%s' entrypoint: %s. Valid interfaces are %s.",
					iface, *impl, pyList(known))
			}
			return nil, fault.New(fault.Invalid, "%s interface implementation '%s' is not supported by hardware type %s.", iface, *impl, driver)
		}
		out[iface] = *impl
	}
	return out, nil
}

// knownImplementations are the implementations of iface that some enabled
// driver offers, sorted.
func (c *Conductor) knownImplementations(iface string) []string {
	seen := map[string]bool{}
	for _, name := range c.drivers.EnabledNames() {
		d, _ := c.drivers.Get(name)
		for _, impl := range driverInterfaces(d)[iface] {
			seen[impl] = true
		}
	}
	out := make([]string, 0, len(seen))
	for impl := range seen {
		out = append(out, impl)
	}
	sort.Strings(out)
	return out
}

// fillInterfaces records on n the default of every interface it has no
// implementation recorded for (nodes enrolled before interfaces were kept,
// or by discovery), so that documents always show what the node uses.
func (c *Conductor) fillInterfaces(n *store.Node) {
	if n.Interfaces == nil {
		n.Interfaces = store.JSONObject{}
	}
	for _, iface := range HardwareInterfaces {
		if _, ok := n.Interfaces[iface]; !ok {
			if impl := c.NodeInterface(n, iface); impl != "" {
				n.Interfaces[iface] = impl
			}
		}
	}
}

// interfaceUpdateStates are the provision states in which a node's
// interfaces may change (Ironic's; in maintenance, any).
var interfaceUpdateStates = []string{StateEnroll, StateInspecting, StateInspectWait, StateManageable, StateAvailable}

func noConductorFor(driver string) error {
	return fault.New(fault.Invalid, "No valid host was found. Reason: No conductor service registered which supports driver %s.", driver)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pyList writes names as Python prints a list, as Ironic's messages do.
func pyList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("'%s'", n)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
