package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// syncCall runs fn in the bounded pool of synchronous driver calls, under
// the configured deadline. A full pool is fault.Unavailable at once: a slow
// BMC must not let callers pile up until the service is exhausted.
func (c *Conductor) syncCall(ctx context.Context, fn func(ctx context.Context) error) error {
	select {
	case c.syncPool <- struct{}{}:
	default:
		return fault.New(fault.Unavailable, "No free worker for synchronous driver calls (%d in flight). Retry later.", cap(c.syncPool))
	}
	defer func() { <-c.syncPool }()
	ctx, cancel := context.WithTimeout(ctx, c.opts.SyncCallTimeout)
	defer cancel()
	err := fn(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fault.Wrap(fault.Unavailable, err, "The driver did not answer within %s.", c.opts.SyncCallTimeout)
	}
	return err
}

// driverFault turns a driver error into an operator-facing one: unsupported
// is a client error; anything else is a failure of the hardware, reported
// with the driver's message (drivers never put credentials in errors).
func driverFault(err error, what string) error {
	if err == nil {
		return nil
	}
	if fault.KindOf(err) != fault.Internal {
		return err
	}
	if errors.Is(err, drivers.ErrNotSupported) {
		return fault.Wrap(fault.Invalid, err, "%s is not supported: %v", what, err)
	}
	return fault.Wrap(fault.Conflict, err, "%s failed: %v", what, err)
}

// BootDeviceState is a node's boot device setting.
type BootDeviceState struct {
	Device     drivers.BootDevice
	Persistent bool
}

// GetBootDevice reads the node's boot device from its BMC.
func (c *Conductor) GetBootDevice(ctx context.Context, ident string) (BootDeviceState, error) {
	var st BootDeviceState
	node, drv, err := c.nodeAndDriver(ctx, ident)
	if err != nil {
		return st, err
	}
	reader, ok := drv.(drivers.BootDeviceReader)
	if !ok {
		return st, fault.New(fault.Invalid, "Driver %s can not read the boot device.", node.Driver)
	}
	err = c.syncCall(ctx, func(ctx context.Context) error {
		st.Device, st.Persistent, err = reader.BootDevice(ctx, driverNode(node))
		return err
	})
	return st, driverFault(err, "Reading the boot device")
}

// SupportedBootDevices lists the boot devices the node's driver can set.
func (c *Conductor) SupportedBootDevices(ctx context.Context, ident string) ([]drivers.BootDevice, error) {
	node, drv, err := c.nodeAndDriver(ctx, ident)
	if err != nil {
		return nil, err
	}
	reader, ok := drv.(drivers.BootDeviceReader)
	if !ok {
		return []drivers.BootDevice{}, nil
	}
	var devs []drivers.BootDevice
	err = c.syncCall(ctx, func(ctx context.Context) error {
		devs, err = reader.SupportedBootDevices(ctx, driverNode(node))
		return err
	})
	return devs, driverFault(err, "Listing boot devices")
}

// SetBootDevice sets the node's next (or every) boot device, under the
// node's exclusive lock, synchronously as Ironic does.
func (c *Conductor) SetBootDevice(ctx context.Context, ident string, dev drivers.BootDevice, persistent bool) error {
	if !dev.Known() {
		return fault.New(fault.Invalid, "Invalid boot device %q: use pxe, disk, cdrom, bios, safe or uefihttp.", dev)
	}
	node, drv, err := c.nodeAndDriver(ctx, ident)
	if err != nil {
		return err
	}
	setter, ok := drv.(drivers.BootDeviceSetter)
	if !ok {
		return fault.New(fault.Invalid, "Driver %s can not set the boot device.", node.Driver)
	}
	return c.syncCall(ctx, func(ctx context.Context) error {
		lk, err := c.lockNode(ctx, node)
		if err != nil {
			return err
		}
		defer c.release(lk)
		if err := setter.SetBootDevice(lk.ctx, driverNode(node), dev, persistent); err != nil {
			return driverFault(err, fmt.Sprintf("Setting boot device %s", dev))
		}
		c.AddHistory(ctx, c.db, node.ID, "INFO", "management", fmt.Sprintf("Boot device set to %s (persistent: %t).", dev, persistent), "")
		return nil
	})
}

// nodeAndDriver reads a node and its driver, which must be enabled here.
func (c *Conductor) nodeAndDriver(ctx context.Context, ident string) (*store.Node, drivers.Driver, error) {
	node, err := c.GetNode(ctx, ident)
	if err != nil {
		return nil, nil, err
	}
	drv, ok := c.drivers.Get(node.Driver)
	if !ok {
		return nil, nil, fault.New(fault.Invalid, "Driver %s of node %s is not enabled on this service.", node.Driver, node.UUID)
	}
	return node, drv, nil
}

// NodeVendorMethods lists the vendor passthru methods of the node's driver.
func (c *Conductor) NodeVendorMethods(ctx context.Context, ident string) ([]drivers.VendorMethod, error) {
	_, drv, err := c.nodeAndDriver(ctx, ident)
	if err != nil {
		return nil, err
	}
	if v, ok := drv.(drivers.NodeVendor); ok {
		return v.VendorMethods(), nil
	}
	return []drivers.VendorMethod{}, nil
}

// DriverVendorMethods lists the driver-level vendor passthru methods.
func (c *Conductor) DriverVendorMethods(name string) ([]drivers.VendorMethod, error) {
	drv, ok := c.drivers.Get(name)
	if !ok {
		return nil, fault.New(fault.NotFound, "Driver %s could not be found.", name)
	}
	if v, ok := drv.(drivers.DriverVendor); ok {
		return v.DriverVendorMethods(), nil
	}
	return []drivers.VendorMethod{}, nil
}

// PassthruResult is the outcome of a vendor passthru call: Async calls were
// queued (202, no body); others answered Result (200).
type PassthruResult struct {
	Async  bool
	Result any
}

// NodeVendorPassthru calls a vendor method on a node. The body is passed to
// the driver unexamined beyond JSON validity, which the caller checks.
// Asynchronous methods are queued as a task that will hold the node's lock;
// a node whose lock is held now is fault.Locked.
func (c *Conductor) NodeVendorPassthru(ctx context.Context, ident, method, httpMethod string, body json.RawMessage, user string) (PassthruResult, error) {
	node, drv, err := c.nodeAndDriver(ctx, ident)
	if err != nil {
		return PassthruResult{}, err
	}
	vendor, _ := drv.(drivers.NodeVendor)
	var methods []drivers.VendorMethod
	if vendor != nil {
		methods = vendor.VendorMethods()
	}
	m, err := findMethod(methods, method, httpMethod)
	if err != nil {
		return PassthruResult{}, err
	}
	if m.Async {
		err := store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
			n, err := c.nodeForAction(ctx, tx, node.UUID)
			if err != nil {
				return err
			}
			if err := c.requireConductor(ctx, tx, n.Driver); err != nil {
				return err
			}
			args := store.JSONObject{"method": m.Name, "http_method": httpMethod, "body": string(body)}
			if _, err := c.enqueue(ctx, tx, PoolOperator, KindVendor, n, args); err != nil {
				return err
			}
			c.AddHistory(ctx, tx, n.ID, "INFO", "vendor_passthru", fmt.Sprintf("%s queued", m.Name), user)
			return nil
		})
		return PassthruResult{Async: true}, err
	}
	var result any
	err = c.syncCall(ctx, func(ctx context.Context) error {
		if m.RequireExclusiveLock {
			lk, err := c.lockNode(ctx, node)
			if err != nil {
				return err
			}
			defer c.release(lk)
			ctx = lk.ctx
		}
		result, err = vendor.CallVendor(ctx, driverNode(node), m.Name, httpMethod, body)
		return err
	})
	return PassthruResult{Result: result}, driverFault(err, "Vendor method "+m.Name)
}

// DriverVendorPassthru calls a driver-level vendor method: synchronous, no
// node, in the bounded pool with a deadline.
func (c *Conductor) DriverVendorPassthru(ctx context.Context, driver, method, httpMethod string, body json.RawMessage) (any, error) {
	drv, ok := c.drivers.Get(driver)
	if !ok {
		return nil, fault.New(fault.NotFound, "Driver %s could not be found.", driver)
	}
	vendor, _ := drv.(drivers.DriverVendor)
	var methods []drivers.VendorMethod
	if vendor != nil {
		methods = vendor.DriverVendorMethods()
	}
	m, err := findMethod(methods, method, httpMethod)
	if err != nil {
		return nil, err
	}
	var result any
	err = c.syncCall(ctx, func(ctx context.Context) error {
		result, err = vendor.CallDriverVendor(ctx, m.Name, httpMethod, body)
		return err
	})
	return result, driverFault(err, "Vendor method "+m.Name)
}

func findMethod(methods []drivers.VendorMethod, name, httpMethod string) (drivers.VendorMethod, error) {
	if name == "" {
		return drivers.VendorMethod{}, fault.New(fault.Invalid, "Method not specified when calling vendor extension.")
	}
	for _, m := range methods {
		if m.Name != name {
			continue
		}
		if !slices.Contains(m.HTTPMethods, httpMethod) {
			return m, fault.New(fault.Invalid, "The method %s does not support HTTP %s. Supported: %s.", name, httpMethod, strings.Join(m.HTTPMethods, ", "))
		}
		return m, nil
	}
	return drivers.VendorMethod{}, fault.New(fault.Invalid, "No handler for method %s.", name)
}

// runVendor runs a queued asynchronous vendor method under the node's lock.
func (c *Conductor) runVendor(ctx context.Context, t *store.Task) error {
	node, lk, drv, err := c.lockTaskNode(ctx, t)
	if err != nil {
		return err
	}
	defer c.release(lk)
	vendor, ok := drv.(drivers.NodeVendor)
	if !ok {
		return fmt.Errorf("driver %s has no vendor methods", node.Driver)
	}
	method, _ := t.Args["method"].(string)
	httpMethod, _ := t.Args["http_method"].(string)
	body, _ := t.Args["body"].(string)
	if httpMethod == "" {
		httpMethod = http.MethodPost
	}
	if _, err := vendor.CallVendor(lk.ctx, driverNode(node), method, httpMethod, json.RawMessage(body)); err != nil {
		return fmt.Errorf("vendor method %s: %w", method, err)
	}
	c.AddHistory(ctx, c.db, node.ID, "INFO", "vendor_passthru", method+" done", "")
	return nil
}
