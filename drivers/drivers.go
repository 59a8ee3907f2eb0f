// Package drivers is the contract between the conductor and hardware
// drivers: the vocabulary (power states, boot devices, vendor methods), the
// small capability interfaces a driver may implement, and the registry that
// enables drivers by name.
//
// A driver implements Driver plus any of the capability interfaces below.
// The conductor discovers capabilities with type assertions; a capability a
// driver lacks, or a value it cannot handle, is ErrNotSupported.
//
// Every method takes a context whose deadline the driver must honour for all
// network I/O; the conductor always sets one, and a driver given none must
// still bound its calls with a default of its own. Errors must name the node
// and the operation and must never contain a credential. Drivers are used
// concurrently for many nodes. A driver holding resources between calls
// (cached connections) implements io.Closer; Registry.Close calls it.
package drivers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotSupported is returned (possibly wrapped) for an operation or value a
// driver does not support.
var ErrNotSupported = errors.New("not supported by this driver")

// Driver is what every hardware driver provides.
type Driver interface {
	// Name is the name operators use in FERRIC_ENABLED_DRIVERS and node.driver.
	Name() string
	// Description is one line for `ferric drivers`.
	Description() string
	// Properties documents every driver_info key the driver reads.
	Properties() []Property
	// ValidateInfo checks a node's driver_info without contacting the BMC:
	// required keys present, types and formats right. The error message
	// names the offending key and is shown to the operator.
	ValidateInfo(info map[string]any) error
}

// Property documents one driver_info key.
type Property struct {
	Name        string
	Description string
	Required    bool
}

// Node is what a driver is told about the node it acts on.
type Node struct {
	UUID       string
	Name       string
	DriverInfo map[string]any
}

// Label names the node in errors and logs: its name if it has one.
func (n Node) Label() string {
	if n.Name != "" {
		return n.Name
	}
	return n.UUID
}

// PowerState is a node's power state, with Ironic's spelling.
type PowerState string

// Power states.
const (
	PowerOn  PowerState = "power on"
	PowerOff PowerState = "power off"
)

// PowerAction is a requested power change, with Ironic's target spelling.
type PowerAction string

// Power actions.
const (
	ActionPowerOn      PowerAction = "power on"
	ActionPowerOff     PowerAction = "power off"
	ActionReboot       PowerAction = "rebooting"
	ActionSoftPowerOff PowerAction = "soft power off"
	ActionSoftReboot   PowerAction = "soft rebooting"
)

// BootDevice is a boot device, with Ironic's spelling.
type BootDevice string

// Boot devices.
const (
	BootPXE      BootDevice = "pxe"
	BootDisk     BootDevice = "disk"
	BootCDROM    BootDevice = "cdrom"
	BootBIOS     BootDevice = "bios"
	BootSafe     BootDevice = "safe"
	BootUEFIHTTP BootDevice = "uefihttp"
)

// Known reports whether d is one of the boot device names above; whether a
// driver supports it is the driver's answer.
func (d BootDevice) Known() bool {
	switch d {
	case BootPXE, BootDisk, BootCDROM, BootBIOS, BootSafe, BootUEFIHTTP:
		return true
	}
	return false
}

// PowerReader reads the real power state from the BMC.
type PowerReader interface {
	PowerState(ctx context.Context, n Node) (PowerState, error)
}

// PowerSetter changes the power state. Reaching a state the node is already
// in is not an error ("power on" when on succeeds). timeout bounds soft
// actions (zero: the driver's default); the call returns once the BMC has
// accepted the action, or, for soft power off, once the node is off. A node
// still on when the timeout passes is an error, and it is not forced off.
type PowerSetter interface {
	SetPowerState(ctx context.Context, n Node, action PowerAction, timeout time.Duration) error
}

// BootDeviceReader reads the boot device setting and lists the supported
// ones. An empty device with a nil error means no override is set. Some BMCs
// do not keep the persistent flag and report false.
type BootDeviceReader interface {
	BootDevice(ctx context.Context, n Node) (dev BootDevice, persistent bool, err error)
	SupportedBootDevices(ctx context.Context, n Node) ([]BootDevice, error)
}

// BootDeviceSetter sets the next boot device (persistent=false: next boot
// only). Setting the device already set is not an error. A device the
// driver cannot set is ErrNotSupported.
type BootDeviceSetter interface {
	SetBootDevice(ctx context.Context, n Node, dev BootDevice, persistent bool) error
}

// Inspector reads a node's hardware properties out of band, without a deploy
// agent: keys such as cpus, memory_mb, local_gb, cpu_arch.
type Inspector interface {
	Inspect(ctx context.Context, n Node) (map[string]any, error)
}

// AgentlessProvisioner is implemented by drivers that can clean and deploy a
// node without a deploy agent (the fake driver). When ProvisionsWithoutAgent
// is false, or the interface is absent, the conductor boots the node into
// the agent and waits for it to call back.
type AgentlessProvisioner interface {
	ProvisionsWithoutAgent(n Node) bool
}

// VendorMethod declares a vendor passthru method.
type VendorMethod struct {
	Name        string
	HTTPMethods []string // e.g. ["POST"]; the verbs the method accepts
	Async       bool     // run as a task (202) rather than answer (200)
	// RequireExclusiveLock: the method needs the node's exclusive lock.
	RequireExclusiveLock bool
	Attach               bool // the result is raw bytes, not JSON
	Description          string
}

// NodeVendor offers vendor passthru methods on nodes.
type NodeVendor interface {
	VendorMethods() []VendorMethod
	// CallVendor runs method on the node. body is the client's JSON,
	// unexamined beyond validity. The result is rendered as JSON for
	// synchronous methods and discarded (logged) for asynchronous ones.
	CallVendor(ctx context.Context, n Node, method, httpMethod string, body json.RawMessage) (any, error)
}

// DriverVendor offers vendor passthru methods that need no node. They are
// always synchronous and must be quick: they run in a small bounded pool.
type DriverVendor interface {
	DriverVendorMethods() []VendorMethod
	CallDriverVendor(ctx context.Context, method, httpMethod string, body json.RawMessage) (any, error)
}

// InfoError reports a bad driver_info key.
type InfoError struct {
	Key    string
	Reason string
}

func (e *InfoError) Error() string { return fmt.Sprintf("driver_info %q: %s", e.Key, e.Reason) }
