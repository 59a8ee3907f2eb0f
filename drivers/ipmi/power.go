package ipmi

import (
	"context"
	"fmt"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"

	"github.com/ferric-metal/ferric/drivers"
)

// PowerState implements drivers.PowerReader with Get Chassis Status.
func (d *Driver) PowerState(ctx context.Context, n drivers.Node) (drivers.PowerState, error) {
	var state drivers.PowerState
	err := d.withSession(ctx, n, "power status", func(ctx context.Context, c *client.Client) error {
		on, err := powerIsOn(ctx, c)
		state = powerState(on)
		return err
	})
	return state, err
}

// SetPowerState implements drivers.PowerSetter. Every action first reads
// the power state, so reaching the current state sends nothing.
//
//   - power on / power off: Chassis Control power up / power down.
//   - rebooting: hard reset when on; power up when off.
//   - soft power off: Chassis Control soft shutdown (ACPI), then polls until
//     the node is off; an error if it is still on when timeout passes.
//   - soft rebooting: soft power off as above, then power up.
//
// timeout (zero: DefaultSoftTimeout) only bounds soft actions; ctx bounds
// everything.
func (d *Driver) SetPowerState(ctx context.Context, n drivers.Node, action drivers.PowerAction, timeout time.Duration) error {
	op := string(action)
	switch action {
	case drivers.ActionPowerOn:
		return d.withSession(ctx, n, op, func(ctx context.Context, c *client.Client) error {
			return powerTo(ctx, c, true)
		})
	case drivers.ActionPowerOff:
		return d.withSession(ctx, n, op, func(ctx context.Context, c *client.Client) error {
			return powerTo(ctx, c, false)
		})
	case drivers.ActionReboot:
		return d.withSession(ctx, n, op, func(ctx context.Context, c *client.Client) error {
			on, err := powerIsOn(ctx, c)
			if err != nil {
				return err
			}
			if !on {
				return control(ctx, c, chassis.ChassisControlPowerUp)
			}
			return control(ctx, c, chassis.ChassisControlHardReset)
		})
	case drivers.ActionSoftPowerOff:
		return d.softPowerOff(ctx, n, op, timeout)
	case drivers.ActionSoftReboot:
		if err := d.softPowerOff(ctx, n, op, timeout); err != nil {
			return err
		}
		return d.withSession(ctx, n, op, func(ctx context.Context, c *client.Client) error {
			return powerTo(ctx, c, true)
		})
	}
	return fmt.Errorf("ipmi power action %q on node %s: %w", action, n.Label(), drivers.ErrNotSupported)
}

// softPowerOff asks the OS to shut down and waits until the node is off.
// Each status check uses its own short session rather than holding one
// open for minutes past the BMC's session inactivity timeout.
func (d *Driver) softPowerOff(ctx context.Context, n drivers.Node, op string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = d.defaultSoftTimeout
	}
	deadline := time.Now().Add(timeout)
	var off bool
	err := d.withSession(ctx, n, op, func(ctx context.Context, c *client.Client) error {
		on, err := powerIsOn(ctx, c)
		if err != nil || !on {
			off = !on
			return err
		}
		return control(ctx, c, chassis.ChassisControlSoftShutdown)
	})
	if err != nil || off {
		return err
	}

	// Poll every pollInterval, and once more when the timeout is reached.
	// (Since Go 1.23, Reset drops a fire still pending from NewTimer(0).)
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		wait.Reset(min(d.pollInterval, max(time.Until(deadline), 0)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("ipmi %s on node %s: waiting for power off: %w", op, n.Label(), ctx.Err())
		case <-wait.C:
		}
		state, err := d.PowerState(ctx, n)
		if err != nil {
			return fmt.Errorf("ipmi %s: waiting for power off: %w", op, err)
		}
		if state == drivers.PowerOff {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("ipmi %s on node %s: still powered on %s after the soft shutdown request", op, n.Label(), timeout)
		}
	}
}

// powerTo sets the power state unless it already is the wanted one.
func powerTo(ctx context.Context, c *client.Client, on bool) error {
	isOn, err := powerIsOn(ctx, c)
	if err != nil || isOn == on {
		return err
	}
	if on {
		return control(ctx, c, chassis.ChassisControlPowerUp)
	}
	return control(ctx, c, chassis.ChassisControlPowerDown)
}

func powerIsOn(ctx context.Context, c *client.Client) (bool, error) {
	st, err := c.GetChassisStatus(ctx)
	if err != nil {
		return false, fmt.Errorf("get chassis status: %w", err)
	}
	return st.PowerIsOn, nil
}

func control(ctx context.Context, c *client.Client, what chassis.ChassisControl) error {
	if _, err := c.ChassisControl(ctx, what); err != nil {
		return fmt.Errorf("chassis control %s: %w", controlName(what), err)
	}
	return nil
}

func controlName(what chassis.ChassisControl) string {
	switch what {
	case chassis.ChassisControlPowerUp:
		return "power up"
	case chassis.ChassisControlPowerDown:
		return "power down"
	case chassis.ChassisControlHardReset:
		return "hard reset"
	case chassis.ChassisControlSoftShutdown:
		return "soft shutdown"
	}
	return fmt.Sprintf("%#x", uint8(what))
}

func powerState(on bool) drivers.PowerState {
	if on {
		return drivers.PowerOn
	}
	return drivers.PowerOff
}
