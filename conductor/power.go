package conductor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// powerTargets maps a requested power action to the power state it ends in.
var powerTargets = map[drivers.PowerAction]drivers.PowerState{
	drivers.ActionPowerOn:      drivers.PowerOn,
	drivers.ActionPowerOff:     drivers.PowerOff,
	drivers.ActionReboot:       drivers.PowerOn,
	drivers.ActionSoftPowerOff: drivers.PowerOff,
	drivers.ActionSoftReboot:   drivers.PowerOn,
}

// PowerRequest is an operator's power change.
type PowerRequest struct {
	Target  string        // Ironic's targets: "power on", "power off", "rebooting", "soft power off", "soft rebooting"
	Timeout time.Duration // for soft actions; zero: the driver's default
	User    string        // for the node's history
}

// ChangePowerState records the requested power change as the node's target
// and queues the task that performs it, in one transaction: when it returns,
// target_power_state is committed and the work will happen.
func (c *Conductor) ChangePowerState(ctx context.Context, ident string, req PowerRequest) (*store.Node, error) {
	action := drivers.PowerAction(req.Target)
	target, ok := powerTargets[action]
	if !ok {
		return nil, fault.New(fault.Invalid, "Invalid power target %q: use power on, power off, rebooting, soft power off or soft rebooting.", req.Target)
	}
	if req.Timeout < 0 {
		return nil, fault.New(fault.Invalid, "The power timeout must be positive.")
	}
	var node *store.Node
	// As Ironic's lock acquisition does, a node busy with other work (a
	// reboot a moment from its end) is tried again a few times before 409.
	err := c.retryWhileBusy(ctx, func() error {
		return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
			n, err := c.nodeForAction(ctx, tx, ident)
			if err != nil {
				return err
			}
			if n.TargetPowerState != nil {
				return fault.Wrap(fault.Conflict, errBusy, "Node %s is already changing its power state to %q; retry when it is done.", n.UUID, *n.TargetPowerState)
			}
			if n.ProvisionState == StateCleaning || n.ProvisionState == StateCleanWait {
				return fault.New(fault.Invalid, "Node %s is cleaning; power actions are refused until cleaning ends.", n.UUID)
			}
			if err := c.requireConductor(ctx, tx, n.Driver); err != nil {
				return err
			}
			if err := store.SetTargetPowerState(ctx, tx, n.ID, string(target), nil); err != nil {
				return err
			}
			args := store.JSONObject{"action": string(action), "timeout_s": req.Timeout.Seconds()}
			if _, err := c.enqueue(ctx, tx, PoolOperator, KindPower, n, args); err != nil {
				return err
			}
			c.AddHistory(ctx, tx, n.ID, "INFO", "power", fmt.Sprintf("%s requested", action), req.User)
			node, err = store.GetNodeByID(ctx, tx, n.ID)
			return err
		})
	})
	return node, err
}

// runPower performs a queued power change under the node's lock and waits
// until the BMC reports its target state. The call to the BMC is recorded
// on the task first (store.MarkDriverCall): a run that finds it recorded
// was interrupted after the call (a conductor died or stopped) and reads the
// outcome instead of calling again, as Ironic never re-runs an interrupted
// power action: a second reboot would be a real one.
func (c *Conductor) runPower(ctx context.Context, t *store.Task) error {
	node, lk, drv, err := c.lockTaskNode(ctx, t)
	if err != nil {
		return err
	}
	defer c.release(lk)
	ctx = lk.ctx

	action := drivers.PowerAction(fmt.Sprint(t.Args["action"]))
	seconds, _ := t.Args["timeout_s"].(float64)
	timeout := time.Duration(seconds * float64(time.Second))
	if _, ok := drv.(drivers.PowerSetter); !ok {
		return fmt.Errorf("driver %s cannot change power: %w", node.Driver, drivers.ErrNotSupported)
	}
	interrupted := t.DriverCallAt != nil
	var state drivers.PowerState
	if interrupted {
		state, err = c.awaitPower(ctx, drv, node, action, timeout)
	} else {
		if err := store.MarkDriverCall(ctx, c.db, t.ID, t.ClaimToken); err != nil {
			return err // the claim is gone: whoever has it now makes the call
		}
		if err := drv.(drivers.PowerSetter).SetPowerState(ctx, driverNode(node), action, timeout); err != nil {
			// The BMC refused or could not be reached: a retry is a new call.
			// (The task's time may be up: the write gets a moment of its own.)
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if cerr := store.ClearDriverCall(cctx, c.db, t.ID, t.ClaimToken); cerr != nil {
				// A retry then reads instead of calling: safe, if less useful.
				c.log.Warn("forgetting a failed power call failed", "task_id", t.ID, "error", cerr)
			}
			cancel()
			return retryable(fmt.Errorf("%s failed: %w", action, err))
		}
		state, err = c.awaitPower(ctx, drv, node, action, timeout)
	}
	var notReached *powerNotReachedError
	if errors.As(err, &notReached) {
		// The BMC answers, in the wrong state: record what it says; the
		// failure (giveUp) keeps it and sets last_error.
		if interrupted {
			err = fmt.Errorf("pending power operation %s was aborted due to conductor take over; it is not repeated: %w", action, err)
		}
		found := string(notReached.found)
		if werr := store.SetPowerState(ctx, c.db, node.ID, lk.fence(), &found, node.TargetPowerState); werr != nil {
			c.log.Warn("recording the power state found failed", "node", node.UUID, "error", werr)
		}
		return err
	}
	if err != nil {
		// Reading failed, or the lock or the task's time ran out: the next
		// attempt reads again (the call is recorded), it does not call.
		return retryable(fmt.Errorf("%s: %w", action, err))
	}
	recorded := string(state)
	return c.releaseWith(lk, func(tx *sqlx.Tx) error {
		if err := store.SetPowerState(ctx, tx, node.ID, lk.fence(), &recorded, nil); err != nil {
			return err
		}
		if err := revokeAgentTokensOnPower(ctx, tx, node.ID, lk.fence(), action); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s done; node is %s", action, recorded)
		if interrupted {
			msg += " (read back from the BMC: the run that called it was interrupted, and the call is not repeated)"
		}
		c.AddHistory(ctx, tx, node.ID, "INFO", "power", msg, "")
		return nil
	})
}

// Polling of the BMC while a power action takes effect: at once, then
// backing off (Ironic's node_wait_for_power_state backs off from 1 s).
const (
	powerPollFirst = 250 * time.Millisecond
	powerPollMax   = 2 * time.Second
)

// changePower asks the driver for action and waits until the BMC reports
// its target state (awaitPower). Many BMCs accept a reset and apply it
// seconds later, so the answer to the request says nothing yet.
func (c *Conductor) changePower(ctx context.Context, drv drivers.Driver, n *store.Node, action drivers.PowerAction, timeout time.Duration) (drivers.PowerState, error) {
	setter, ok := drv.(drivers.PowerSetter)
	if !ok {
		return "", fmt.Errorf("driver %s cannot change power: %w", n.Driver, drivers.ErrNotSupported)
	}
	if err := setter.SetPowerState(ctx, driverNode(n), action, timeout); err != nil {
		return "", err
	}
	return c.awaitPower(ctx, drv, n, action, timeout)
}

// awaitPower reads the node's power state until it is action's target, for
// up to timeout (zero: Options.PowerStateTimeout). A driver that cannot read
// is trusted to have done it. Reads that fail meanwhile are tolerated (a
// BMC may be busy while it resets); the last one decides at the deadline.
func (c *Conductor) awaitPower(ctx context.Context, drv drivers.Driver, n *store.Node, action drivers.PowerAction, timeout time.Duration) (drivers.PowerState, error) {
	target := powerTargets[action]
	reader, ok := drv.(drivers.PowerReader)
	if !ok {
		return target, nil
	}
	if timeout <= 0 {
		timeout = c.opts.PowerStateTimeout
	}
	deadline := time.Now().Add(timeout)
	interval := powerPollFirst
	for {
		got, err := reader.PowerState(ctx, driverNode(n))
		if err == nil && got == target {
			return got, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("waiting for %s: %w", target, ctx.Err())
		}
		left := time.Until(deadline)
		if left <= 0 {
			if err != nil {
				return "", fmt.Errorf("reading the power state after %s: %w", action, err)
			}
			return "", &powerNotReachedError{action: action, found: got, after: timeout}
		}
		sleep(ctx, min(interval, left))
		interval = min(interval*2, powerPollMax)
	}
}

// powerNotReachedError: the BMC took the action but never reported its
// target state.
type powerNotReachedError struct {
	action drivers.PowerAction
	found  drivers.PowerState
	after  time.Duration
}

func (e *powerNotReachedError) Error() string {
	return fmt.Sprintf("%s: the node did not reach %s within %s (the BMC reports %s)", e.action, powerTargets[e.action], e.after, e.found)
}

// giveUp records on the node that its task failed for good: a power change
// clears its target and sets last_error; interrupted provisioning moves the
// node to the failed state of where it was.
func (c *Conductor) giveUp(ctx context.Context, t *store.Task, cause error) {
	if t.NodeID == nil {
		return
	}
	msg := cause.Error()
	err := store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := store.GetNodeByID(ctx, tx, *t.NodeID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM nodes WHERE id = $1 FOR UPDATE`, n.ID); err != nil {
			return err
		}
		if holder := n.LockHolder(c.now()); holder != "" && holder != c.opts.Name {
			return nil // someone else works on the node now and owns its outcome
		}
		switch t.Kind {
		case KindPower:
			if err := store.SetPowerState(ctx, tx, n.ID, nil, n.PowerState, nil); err != nil {
				return err
			}
			msg = "Power action failed: " + msg
			if err := store.SetLastError(ctx, tx, n.ID, nil, &msg); err != nil {
				return err
			}
		case KindProvision:
			expected, _ := t.Args["state"].(string)
			failed, ok := failedStates[n.ProvisionState]
			if !ok || n.ProvisionState != expected {
				return nil // the node moved on; nothing is stuck
			}
			target := n.TargetProvisionState
			if stableStates[failed] {
				target = nil
			}
			msg = fmt.Sprintf("%s failed: %s", n.ProvisionState, msg)
			if err := store.Transition(ctx, tx, n.ID, nil, n.ProvisionState, failed, target, &msg); err != nil {
				return err
			}
		default:
			if err := store.SetLastError(ctx, tx, n.ID, nil, &msg); err != nil {
				return err
			}
		}
		c.AddHistory(ctx, tx, n.ID, "ERROR", t.Kind, msg, "")
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Error("recording a failed task on its node failed", "task_id", t.ID, "error", err)
	}
}

// revokeAgentTokensOnPower revokes the node's agent tokens after a power
// action that stopped or restarted the machine: the agent holding them is
// gone. Powering on does not revoke: an agent already running (the machine
// was on) keeps its token, as in Ironic.
func revokeAgentTokensOnPower(ctx context.Context, q store.Querier, nodeID int64, f *store.Fence, action drivers.PowerAction) error {
	if action == drivers.ActionPowerOn {
		return nil
	}
	if err := store.RevokeAgentTokens(ctx, q, nodeID, f); err != nil {
		return fmt.Errorf("revoke agent tokens: %w", err)
	}
	return nil
}
