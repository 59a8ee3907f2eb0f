package redfish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
)

// Reset types that carry out each step, in order of preference. A BMC that
// advertises none of a step's types cannot do it.
var (
	resetsPowerOn    = []schemas.ResetType{schemas.OnResetType, schemas.ForceOnResetType, schemas.PushPowerButtonResetType}
	resetsPowerOff   = []schemas.ResetType{schemas.ForceOffResetType}
	resetsReboot     = []schemas.ResetType{schemas.ForceRestartResetType, schemas.PowerCycleResetType}
	resetsSoftOff    = []schemas.ResetType{schemas.GracefulShutdownResetType}
	resetsSoftReboot = []schemas.ResetType{schemas.GracefulRestartResetType}
)

// errPowerTimeout: the node did not reach the awaited power state in time.
var errPowerTimeout = errors.New("the node did not power off in time")

// PowerState implements drivers.PowerReader. PoweringOn counts as on and
// PoweringOff as off, as in Ironic.
func (d *Driver) PowerState(ctx context.Context, n drivers.Node) (drivers.PowerState, error) {
	var state drivers.PowerState
	err := d.run(ctx, n, "read power state", func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		state, err = powerStateOf(sys.PowerState)
		return err
	})
	return state, err
}

func powerStateOf(p schemas.PowerState) (drivers.PowerState, error) {
	switch p {
	case schemas.OnPowerState, schemas.PoweringOnPowerState:
		return drivers.PowerOn, nil
	case schemas.OffPowerState, schemas.PoweringOffPowerState:
		return drivers.PowerOff, nil
	case "":
		return "", errors.New("the BMC reports no PowerState")
	}
	return "", fmt.Errorf("the BMC reports PowerState %q, which has no Ferric power state", clip(string(p)))
}

// SetPowerState implements drivers.PowerSetter. Each action uses the reset
// types the system advertises:
//
//	power on        On, else ForceOn, else PushPowerButton
//	power off       ForceOff
//	rebooting       ForceRestart, else PowerCycle, else ForceOff + wait + power on
//	soft power off  GracefulShutdown, then wait until off or timeout
//	soft rebooting  GracefulRestart, else GracefulShutdown + wait + power on
//
// Reaching the state the node is in succeeds without a reset; rebooting a
// node that is off powers it on. A step the BMC cannot do is
// drivers.ErrNotSupported.
func (d *Driver) SetPowerState(ctx context.Context, n drivers.Node, action drivers.PowerAction, timeout time.Duration) error {
	op := fmt.Sprintf("set power %q", action)
	switch action {
	case drivers.ActionPowerOn, drivers.ActionPowerOff, drivers.ActionReboot, drivers.ActionSoftPowerOff, drivers.ActionSoftReboot:
	default:
		return opError(n, op, fmt.Errorf("unknown power action: %w", drivers.ErrNotSupported))
	}
	if timeout <= 0 {
		timeout = d.softTimeout
	}
	return d.run(ctx, n, op, func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		state, err := powerStateOf(sys.PowerState)
		if err != nil {
			return err
		}
		allowed, err := sys.GetSupportedResetTypes()
		if err != nil {
			return fmt.Errorf("reading the allowed reset types: %w", err)
		}
		p := &powerChange{d: d, o: o, sys: sys, allowed: allowed, timeout: timeout}
		switch {
		case action == drivers.ActionPowerOn, state == drivers.PowerOff && (action == drivers.ActionReboot || action == drivers.ActionSoftReboot):
			if state == drivers.PowerOn {
				return nil
			}
			return p.reset(resetsPowerOn)
		case state == drivers.PowerOff: // power off or soft power off
			return nil
		case action == drivers.ActionPowerOff:
			return p.reset(resetsPowerOff)
		case action == drivers.ActionSoftPowerOff:
			if err := p.reset(resetsSoftOff); err != nil {
				return err
			}
			return p.waitOff()
		case action == drivers.ActionReboot:
			if p.can(resetsReboot) {
				return p.reset(resetsReboot)
			}
			return p.offThenOn(resetsPowerOff, resetsReboot)
		default: // soft rebooting
			if p.can(resetsSoftReboot) {
				return p.reset(resetsSoftReboot)
			}
			return p.offThenOn(resetsSoftOff, resetsSoftReboot)
		}
	})
}

// powerChange carries one SetPowerState through its steps.
type powerChange struct {
	d       *Driver
	o       *operation
	sys     *schemas.ComputerSystem
	allowed []schemas.ResetType
	timeout time.Duration
}

// pick returns the first candidate the system allows. A system that
// advertises nothing is assumed to take the standard first choice.
func (p *powerChange) pick(candidates []schemas.ResetType) (schemas.ResetType, bool) {
	if len(p.allowed) == 0 {
		return candidates[0], true
	}
	for _, c := range candidates {
		if slices.Contains(p.allowed, c) {
			return c, true
		}
	}
	return "", false
}

func (p *powerChange) can(candidates []schemas.ResetType) bool {
	_, ok := p.pick(candidates)
	return ok
}

func (p *powerChange) reset(candidates []schemas.ResetType) error {
	rt, ok := p.pick(candidates)
	if !ok {
		return p.notSupported(candidates)
	}
	if _, err := p.sys.Reset(rt); err != nil {
		return fmt.Errorf("reset %s: %w", rt, err)
	}
	return nil
}

func (p *powerChange) notSupported(candidates []schemas.ResetType) error {
	return fmt.Errorf("the BMC allows reset types %s, none of %s: %w", joinResets(p.allowed), joinResets(candidates), drivers.ErrNotSupported)
}

// offThenOn replaces a missing restart: power off with off, wait until off,
// then power on. wanted names the restart types for the error.
func (p *powerChange) offThenOn(off, wanted []schemas.ResetType) error {
	if !p.can(off) || !p.can(resetsPowerOn) {
		return p.notSupported(wanted)
	}
	if err := p.reset(off); err != nil {
		return err
	}
	if err := p.waitOff(); err != nil {
		return err
	}
	return p.reset(resetsPowerOn)
}

// waitOff polls the system until it reports Off, the timeout passes or
// the context ends.
func (p *powerChange) waitOff() error {
	deadline := time.Now().Add(p.timeout)
	ctx := p.o.c.ctx
	for {
		sys, err := p.o.system()
		if err != nil {
			return fmt.Errorf("waiting for power off: %w", err)
		}
		if sys.PowerState == schemas.OffPowerState {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w: still %s after %s", errPowerTimeout, clip(string(sys.PowerState)), p.timeout)
		}
		t := time.NewTimer(min(p.d.pollInterval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for power off: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func joinResets(rts []schemas.ResetType) string {
	if len(rts) == 0 {
		return "(none)"
	}
	s := make([]string, len(rts))
	for i, rt := range rts {
		s[i] = clip(string(rt))
	}
	return strings.Join(s, ", ")
}

// opError is the error of an operation that failed before reaching the BMC.
func opError(n drivers.Node, op string, err error) error {
	return fmt.Errorf("redfish: node %s: %s: %w", n.Label(), op, err)
}
