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
	err := store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		if n.TargetPowerState != nil {
			return fault.New(fault.Conflict, "Node %s is already changing its power state to %q; retry when it is done.", n.UUID, *n.TargetPowerState)
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
	return node, err
}

// runPower performs a queued power change under the node's lock.
func (c *Conductor) runPower(ctx context.Context, t *store.Task) error {
	node, lk, drv, err := c.lockTaskNode(ctx, t)
	if err != nil {
		return err
	}
	defer c.release(lk)
	ctx = lk.ctx

	action := drivers.PowerAction(fmt.Sprint(t.Args["action"]))
	timeout, _ := t.Args["timeout_s"].(float64)
	setter, ok := drv.(drivers.PowerSetter)
	if !ok {
		return fmt.Errorf("driver %s cannot change power: %w", node.Driver, drivers.ErrNotSupported)
	}
	if err := setter.SetPowerState(ctx, driverNode(node), action, time.Duration(timeout*float64(time.Second))); err != nil {
		return retryable(fmt.Errorf("%s failed: %w", action, err))
	}
	state := string(powerTargets[action])
	if reader, ok := drv.(drivers.PowerReader); ok {
		if got, err := reader.PowerState(ctx, driverNode(node)); err == nil {
			state = string(got)
		}
	}
	return c.releaseWith(lk, func(tx *sqlx.Tx) error {
		if err := store.SetPowerState(ctx, tx, node.ID, lk.fence(), &state, nil); err != nil {
			return err
		}
		if err := revokeAgentTokensOnPower(ctx, tx, node.ID, lk.fence(), action); err != nil {
			return err
		}
		c.AddHistory(ctx, tx, node.ID, "INFO", "power", fmt.Sprintf("%s done; node is %s", action, state), "")
		return nil
	})
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
