// Package fake is a driver without hardware: instant, stateful in memory, with
// optional injected latency and failures. Tests, benchmarks and demos use it.
//
// driver_info keys (all optional):
//
//	fake_latency   a duration added to every BMC operation, e.g. "50ms"
//	fake_fail      comma list of operations that fail: power, boot, vendor
//	fake_power     initial power state: "power on" or "power off" (default)
//	fake_agent     true: provisioning waits for a (simulated) deploy agent to
//	               call back, as with real hardware; default false: instant
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/drivers"
)

// Driver is the fake driver. Its zero value is not usable; call New.
type Driver struct {
	mu    sync.Mutex
	nodes map[string]*nodeState
}

type nodeState struct {
	power      drivers.PowerState
	boot       drivers.BootDevice
	persistent bool
}

// New returns a fake driver with no nodes known yet.
func New() *Driver { return &Driver{nodes: map[string]*nodeState{}} }

var (
	_ drivers.Driver               = (*Driver)(nil)
	_ drivers.PowerReader          = (*Driver)(nil)
	_ drivers.PowerSetter          = (*Driver)(nil)
	_ drivers.BootDeviceReader     = (*Driver)(nil)
	_ drivers.BootDeviceSetter     = (*Driver)(nil)
	_ drivers.NodeVendor           = (*Driver)(nil)
	_ drivers.DriverVendor         = (*Driver)(nil)
	_ drivers.Inspector            = (*Driver)(nil)
	_ drivers.AgentlessProvisioner = (*Driver)(nil)
)

// Name implements drivers.Driver.
func (d *Driver) Name() string { return "fake" }

// Description implements drivers.Driver.
func (d *Driver) Description() string {
	return "Hardware-free driver for tests and demos; state kept in memory"
}

// Properties implements drivers.Driver.
func (d *Driver) Properties() []drivers.Property {
	return []drivers.Property{
		{Name: "fake_latency", Description: "Delay added to every BMC operation, e.g. 50ms. Optional."},
		{Name: "fake_fail", Description: "Comma list of operations that fail: power, boot, vendor. Optional."},
		{Name: "fake_power", Description: "Initial power state: \"power on\" or \"power off\" (default). Optional."},
		{Name: "fake_agent", Description: "true: inspection, cleaning and deployment wait for a deploy agent to call back. Optional."},
	}
}

// ValidateInfo implements drivers.Driver.
func (d *Driver) ValidateInfo(info map[string]any) error {
	if v, ok := info["fake_latency"]; ok {
		s, isString := v.(string)
		if _, err := time.ParseDuration(s); !isString || err != nil {
			return &drivers.InfoError{Key: "fake_latency", Reason: "must be a duration such as \"50ms\""}
		}
	}
	if v, ok := info["fake_fail"]; ok {
		s, isString := v.(string)
		if !isString {
			return &drivers.InfoError{Key: "fake_fail", Reason: "must be a string"}
		}
		for _, op := range strings.Split(s, ",") {
			switch strings.TrimSpace(op) {
			case "power", "boot", "vendor", "":
			default:
				return &drivers.InfoError{Key: "fake_fail", Reason: fmt.Sprintf("unknown operation %q", op)}
			}
		}
	}
	if v, ok := info["fake_agent"]; ok {
		if _, isBool := v.(bool); !isBool {
			return &drivers.InfoError{Key: "fake_agent", Reason: "must be true or false"}
		}
	}
	if v, ok := info["fake_power"]; ok && v != string(drivers.PowerOn) && v != string(drivers.PowerOff) {
		return &drivers.InfoError{Key: "fake_power", Reason: "must be \"power on\" or \"power off\""}
	}
	return nil
}

// act waits the injected latency and reports an injected failure.
func (d *Driver) act(ctx context.Context, n drivers.Node, op string) error {
	if s, _ := n.DriverInfo["fake_latency"].(string); s != "" {
		if lat, err := time.ParseDuration(s); err == nil && lat > 0 {
			t := time.NewTimer(lat)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return fmt.Errorf("fake %s on node %s: %w", op, n.Label(), ctx.Err())
			case <-t.C:
			}
		}
	}
	if s, _ := n.DriverInfo["fake_fail"].(string); s != "" {
		for _, f := range strings.Split(s, ",") {
			if strings.TrimSpace(f) == op {
				return fmt.Errorf("fake %s on node %s: injected failure", op, n.Label())
			}
		}
	}
	return nil
}

func (d *Driver) state(n drivers.Node) *nodeState {
	st, ok := d.nodes[n.UUID]
	if !ok {
		st = &nodeState{power: drivers.PowerOff, boot: drivers.BootDisk, persistent: true}
		if p, _ := n.DriverInfo["fake_power"].(string); p == string(drivers.PowerOn) {
			st.power = drivers.PowerOn
		}
		d.nodes[n.UUID] = st
	}
	return st
}

// PowerState implements drivers.PowerReader.
func (d *Driver) PowerState(ctx context.Context, n drivers.Node) (drivers.PowerState, error) {
	if err := d.act(ctx, n, "power"); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state(n).power, nil
}

// SetPowerState implements drivers.PowerSetter.
func (d *Driver) SetPowerState(ctx context.Context, n drivers.Node, action drivers.PowerAction, _ time.Duration) error {
	if err := d.act(ctx, n, "power"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.state(n)
	switch action {
	case drivers.ActionPowerOn, drivers.ActionReboot, drivers.ActionSoftReboot:
		st.power = drivers.PowerOn
	case drivers.ActionPowerOff, drivers.ActionSoftPowerOff:
		st.power = drivers.PowerOff
	default:
		return fmt.Errorf("fake power action %q on node %s: %w", action, n.Label(), drivers.ErrNotSupported)
	}
	if !st.persistent && action != drivers.ActionPowerOff && action != drivers.ActionSoftPowerOff {
		st.boot, st.persistent = drivers.BootDisk, true // a one-time setting is used up
	}
	return nil
}

var supportedBoot = []drivers.BootDevice{drivers.BootPXE, drivers.BootDisk, drivers.BootCDROM, drivers.BootBIOS}

// BootDevice implements drivers.BootDeviceReader.
func (d *Driver) BootDevice(ctx context.Context, n drivers.Node) (drivers.BootDevice, bool, error) {
	if err := d.act(ctx, n, "boot"); err != nil {
		return "", false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.state(n)
	return st.boot, st.persistent, nil
}

// SupportedBootDevices implements drivers.BootDeviceReader.
func (d *Driver) SupportedBootDevices(context.Context, drivers.Node) ([]drivers.BootDevice, error) {
	return append([]drivers.BootDevice(nil), supportedBoot...), nil
}

// SetBootDevice implements drivers.BootDeviceSetter.
func (d *Driver) SetBootDevice(ctx context.Context, n drivers.Node, dev drivers.BootDevice, persistent bool) error {
	if err := d.act(ctx, n, "boot"); err != nil {
		return err
	}
	ok := false
	for _, s := range supportedBoot {
		ok = ok || s == dev
	}
	if !ok {
		return fmt.Errorf("fake set boot device %q on node %s: %w", dev, n.Label(), drivers.ErrNotSupported)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.state(n)
	st.boot, st.persistent = dev, persistent
	return nil
}

// ProvisionsWithoutAgent implements drivers.AgentlessProvisioner.
func (d *Driver) ProvisionsWithoutAgent(n drivers.Node) bool {
	wait, _ := n.DriverInfo["fake_agent"].(bool)
	return !wait
}

// Inspect implements drivers.Inspector with fixed, plausible hardware.
func (d *Driver) Inspect(ctx context.Context, n drivers.Node) (map[string]any, error) {
	if err := d.act(ctx, n, "power"); err != nil {
		return nil, err
	}
	if !d.ProvisionsWithoutAgent(n) {
		return nil, fmt.Errorf("fake inspect on node %s: out-of-band inspection disabled by fake_agent: %w", n.Label(), drivers.ErrNotSupported)
	}
	return map[string]any{"cpus": 8, "memory_mb": 32768, "local_gb": 480, "cpu_arch": "x86_64"}, nil
}

// VendorMethods implements drivers.NodeVendor.
func (d *Driver) VendorMethods() []drivers.VendorMethod {
	return []drivers.VendorMethod{
		{Name: "echo", HTTPMethods: []string{"GET", "POST"}, Description: "Answers the request body; for testing passthru."},
		{Name: "slow", HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true,
			Description: "Waits fake_latency then succeeds, holding the node lock; for testing async passthru."},
	}
}

// CallVendor implements drivers.NodeVendor.
func (d *Driver) CallVendor(ctx context.Context, n drivers.Node, method, _ string, body json.RawMessage) (any, error) {
	if err := d.act(ctx, n, "vendor"); err != nil {
		return nil, err
	}
	switch method {
	case "echo":
		return echo(body), nil
	case "slow":
		return nil, nil
	}
	return nil, fmt.Errorf("fake vendor method %q: %w", method, drivers.ErrNotSupported)
}

// DriverVendorMethods implements drivers.DriverVendor.
func (d *Driver) DriverVendorMethods() []drivers.VendorMethod {
	return []drivers.VendorMethod{
		{Name: "echo", HTTPMethods: []string{"GET", "POST"}, Description: "Answers the request body; for testing driver passthru."},
		{Name: "sleep", HTTPMethods: []string{"POST"},
			Description: `Waits {"seconds": N} (at most 60) or until the call's deadline; for testing the bounded pool.`},
	}
}

// CallDriverVendor implements drivers.DriverVendor.
func (d *Driver) CallDriverVendor(ctx context.Context, method, _ string, body json.RawMessage) (any, error) {
	switch method {
	case "echo":
		return echo(body), nil
	case "sleep":
		var req struct {
			Seconds float64 `json:"seconds"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, fmt.Errorf("fake sleep: body must be {\"seconds\": N}: %w", drivers.ErrNotSupported)
			}
		}
		wait := time.NewTimer(time.Duration(min(max(req.Seconds, 0), 60) * float64(time.Second)))
		defer wait.Stop()
		select {
		case <-wait.C:
			return map[string]any{"slept": req.Seconds}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("fake driver vendor method %q: %w", method, drivers.ErrNotSupported)
}

// echo answers a passthru call with its body ({} for none).
func echo(body json.RawMessage) any {
	if len(body) == 0 {
		return map[string]any{}
	}
	return body
}
