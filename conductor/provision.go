package conductor

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// verbs maps Ironic's provision targets to state machine events.
var verbs = map[string]Event{
	"manage": EventManage, "provide": EventProvide, "inspect": EventInspect,
	"active": EventDeploy, "deploy": EventDeploy, "rebuild": EventRebuild,
	"deleted": EventDelete, "undeploy": EventDelete,
	"clean": EventClean, "abort": EventAbort,
}

// ProvisionRequest is an operator's provision state change.
type ProvisionRequest struct {
	Target     string // Ironic's verb: manage, provide, inspect, active, deploy, rebuild, deleted, undeploy, clean, abort
	CleanSteps []any  // required by clean, refused otherwise
	// ConfigDrive (a URL, base64 gzip, or the JSON parts) goes to the
	// instance; only with active, deploy and rebuild. Kept in
	// instance_info.configdrive, as Ironic does, and masked on reads.
	ConfigDrive any
	User        string // for the node's history
}

// ChangeProvisionState applies the first transition of the requested
// operation, sets target_provision_state and queues the task that continues
// the work, all in one transaction: when it returns, clients polling the
// node see the new state and target.
func (c *Conductor) ChangeProvisionState(ctx context.Context, ident string, req ProvisionRequest) (*store.Node, error) {
	event, ok := verbs[req.Target]
	if !ok {
		return nil, fault.New(fault.Invalid, "%q is not a valid provision state target.", req.Target)
	}
	if event == EventClean && len(req.CleanSteps) == 0 {
		return nil, fault.New(fault.Invalid, "clean_steps is required when setting the target to clean.")
	}
	if event != EventClean && req.CleanSteps != nil {
		return nil, fault.New(fault.Invalid, "clean_steps is only valid when setting the target to clean.")
	}
	if req.ConfigDrive != nil && event != EventDeploy && event != EventRebuild {
		return nil, fault.New(fault.Invalid, "configdrive is only valid when setting the target to active, deploy or rebuild.")
	}
	var node *store.Node
	err := store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForUpdate(ctx, tx, ident)
		if err != nil {
			return err
		}
		target := ""
		if n.TargetProvisionState != nil {
			target = *n.TargetProvisionState
		}
		// The transition first, the lock second, as Ironic checks them: an
		// action the state forbids is 400 whoever holds the node.
		to, newTarget, ok := nextState(n.ProvisionState, target, event)
		if !ok {
			return invalidTransition(n.UUID, n.ProvisionState, event)
		}
		if holder := n.LockHolder(c.now()); holder != "" {
			return nodeLocked(n.UUID, holder)
		}
		if n.Maintenance && (event == EventDeploy || event == EventRebuild) {
			return fault.New(fault.Invalid, "Node %s is in maintenance mode; it can not be deployed.", n.UUID)
		}
		var lastError *string
		if event == EventAbort {
			lastError = strPtr(fmt.Sprintf("Aborted by operator while in %s.", n.ProvisionState))
		} else if err := c.requireConductor(ctx, tx, n.Driver); err != nil {
			return err
		}
		if err := store.Transition(ctx, tx, n.ID, nil, n.ProvisionState, to, nullable(newTarget), lastError); err != nil {
			return err
		}
		if err := store.RevokeAgentTokens(ctx, tx, n.ID, nil); err != nil {
			return err
		}
		if event == EventClean || event == EventProvide {
			// A manual clean's steps go to the agent; an automated clean
			// runs the agent's defaults.
			if err := store.SetCleanSteps(ctx, tx, n.ID, req.CleanSteps); err != nil {
				return err
			}
		}
		if req.ConfigDrive != nil {
			if err := store.MergeInstanceInfo(ctx, tx, n.ID, store.JSONObject{"configdrive": req.ConfigDrive}); err != nil {
				return err
			}
		}
		if workStates[to] {
			args := store.JSONObject{"state": to, "phase": phaseStart}
			if req.CleanSteps != nil {
				args["clean_steps"] = req.CleanSteps
			}
			if _, err := c.enqueue(ctx, tx, PoolOperator, KindProvision, n, args); err != nil {
				return err
			}
		}
		c.addHistory(ctx, tx, n.ID, "INFO", "provision", fmt.Sprintf("%s: %s -> %s", req.Target, n.ProvisionState, to), req.User)
		node, err = store.GetNodeByID(ctx, tx, n.ID)
		return err
	})
	return node, err
}

// workStates are the states in which a conductor task works on the node.
var workStates = map[string]bool{
	StateVerifying: true, StateInspecting: true, StateCleaning: true, StateDeploying: true, StateDeleting: true,
}

// Task phases: start is the work after an operator's request; resume is
// the work after the agent called back.
const (
	phaseStart  = "start"
	phaseResume = "resume"
)

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// provisionRun is one provision task at work on a locked node.
type provisionRun struct {
	c     *Conductor
	node  *store.Node
	drv   drivers.Driver
	lock  *nodeLock
	phase string
}

// runProvision does the work of the node's current state under its lock,
// moving through states until the node is stable, failed, or waiting for
// its agent.
func (c *Conductor) runProvision(ctx context.Context, t *store.Task) error {
	node, lk, drv, err := c.lockTaskNode(ctx, t)
	if err != nil {
		return err
	}
	defer c.release(lk)
	if node.ProvisionState != t.Args["state"] {
		c.log.Info("provision task is stale; the node moved on", "node", node.UUID, "state", node.ProvisionState, "task_state", t.Args["state"])
		return nil
	}
	phase, _ := t.Args["phase"].(string)
	run := &provisionRun{c: c, node: node, drv: drv, lock: lk, phase: phase}
	return run.loop(lk.ctx)
}

func (r *provisionRun) loop(ctx context.Context) error {
	for workStates[r.node.ProvisionState] {
		event, err := r.step(ctx, r.node.ProvisionState)
		var lastError *string
		if err != nil {
			if ctx.Err() != nil {
				return err // lost the lock, timed out, or shutting down: giveUp decides
			}
			event, lastError = EventFail, strPtr(fmt.Sprintf("%s failed: %v", r.node.ProvisionState, err))
		}
		if err := r.fire(ctx, event, lastError); err != nil {
			return err
		}
		r.phase = phaseStart
	}
	return nil
}

// fire applies event to the node, fenced by the lock.
func (r *provisionRun) fire(ctx context.Context, event Event, lastError *string) error {
	from := r.node.ProvisionState
	target := ""
	if r.node.TargetProvisionState != nil {
		target = *r.node.TargetProvisionState
	}
	to, newTarget, ok := nextState(from, target, event)
	if !ok {
		return fmt.Errorf("internal: no transition from %s on %s", from, event)
	}
	severity, msg := "INFO", fmt.Sprintf("%s -> %s", from, to)
	if lastError != nil {
		severity, msg = "ERROR", *lastError
	}
	write := func(q store.Querier) error {
		if err := store.Transition(ctx, q, r.node.ID, r.lock.fence(), from, to, nullable(newTarget), lastError); err != nil {
			return err
		}
		r.c.addHistory(ctx, q, r.node.ID, severity, "provision", msg, "")
		return nil
	}
	var err error
	if workStates[to] {
		err = write(r.c.db)
	} else { // the task ends here: the lock goes with the last write
		err = r.c.releaseWith(r.lock, func(tx *sqlx.Tx) error { return write(tx) })
	}
	if err != nil {
		if errors.Is(err, store.ErrStale) {
			return fmt.Errorf("node %s changed underneath (lock lost or state moved): %w", r.node.UUID, err)
		}
		return err
	}
	r.node.ProvisionState, r.node.TargetProvisionState = to, nullable(newTarget)
	return nil
}

// step does the work of one state and says what happened.
func (r *provisionRun) step(ctx context.Context, state string) (Event, error) {
	dn := driverNode(r.node)
	switch state {
	case StateVerifying:
		if err := r.drv.ValidateInfo(r.node.DriverInfo); err != nil {
			return "", err
		}
		if err := r.readPower(ctx); err != nil {
			return "", err
		}
		return EventDone, nil

	case StateInspecting:
		if r.phase == phaseResume {
			return EventDone, nil // the agent's inventory has been stored by now
		}
		if insp, ok := r.drv.(drivers.Inspector); ok && r.agentless() {
			props, err := insp.Inspect(ctx, dn)
			if err != nil {
				return "", err
			}
			if err := store.MergeProperties(ctx, r.c.db, r.node.ID, r.lock.fence(), props); err != nil {
				return "", err
			}
			return EventDone, nil
		}
		return r.bootAgent(ctx)

	case StateCleaning:
		if r.agentless() || r.phase == phaseResume {
			return EventDone, r.setPower(ctx, drivers.ActionPowerOff)
		}
		return r.bootAgent(ctx)

	case StateDeploying:
		if !r.agentless() && r.phase != phaseResume {
			return r.bootAgent(ctx)
		}
		if err := r.setBoot(ctx, drivers.BootDisk, true); err != nil {
			return "", err
		}
		return EventDone, r.setPower(ctx, drivers.ActionReboot)

	case StateDeleting:
		return EventClean, r.setPower(ctx, drivers.ActionPowerOff)
	}
	return "", fmt.Errorf("internal: no work defined for state %s", state)
}

// agentless reports whether the driver provisions this node without an agent.
func (r *provisionRun) agentless() bool {
	a, ok := r.drv.(drivers.AgentlessProvisioner)
	return ok && a.ProvisionsWithoutAgent(driverNode(r.node))
}

// bootAgent boots the node into the deploy agent and waits for its call.
func (r *provisionRun) bootAgent(ctx context.Context) (Event, error) {
	if err := r.setBoot(ctx, drivers.BootPXE, false); err != nil {
		return "", err
	}
	return EventWait, r.setPower(ctx, drivers.ActionReboot)
}

func (r *provisionRun) setBoot(ctx context.Context, dev drivers.BootDevice, persistent bool) error {
	setter, ok := r.drv.(drivers.BootDeviceSetter)
	if !ok {
		return nil // drivers without boot control rely on the BMC's boot order
	}
	if err := setter.SetBootDevice(ctx, driverNode(r.node), dev, persistent); err != nil {
		return fmt.Errorf("set boot device %s: %w", dev, err)
	}
	return nil
}

func (r *provisionRun) setPower(ctx context.Context, action drivers.PowerAction) error {
	setter, ok := r.drv.(drivers.PowerSetter)
	if !ok {
		return fmt.Errorf("driver %s cannot change power: %w", r.node.Driver, drivers.ErrNotSupported)
	}
	if err := setter.SetPowerState(ctx, driverNode(r.node), action, 0); err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	state := string(powerTargets[action])
	return store.Transact(ctx, r.c.db, func(tx *sqlx.Tx) error {
		if err := store.SetPowerState(ctx, tx, r.node.ID, r.lock.fence(), &state, nil); err != nil {
			return err
		}
		// A power off or reboot ends the agent's boot: its token goes too.
		return revokeAgentTokensOnPower(ctx, tx, r.node.ID, r.lock.fence(), action)
	})
}

func (r *provisionRun) readPower(ctx context.Context) error {
	reader, ok := r.drv.(drivers.PowerReader)
	if !ok {
		return nil
	}
	ps, err := reader.PowerState(ctx, driverNode(r.node))
	if err != nil {
		return fmt.Errorf("read power state: %w", err)
	}
	state := string(ps)
	return store.SetPowerState(ctx, r.c.db, r.node.ID, r.lock.fence(), &state, nil)
}

// AgentCallback is called when a node's agent checks in: a node waiting for
// it (wait call-back, clean wait, inspect wait) resumes its work as a task
// in the agent pool. It reports whether the node resumed; a node in any
// other state is left as it is (the checkin is only recorded).
func (c *Conductor) AgentCallback(ctx context.Context, q store.Querier, node *store.Node) (bool, error) {
	if node.ProvisionState != StateWaitCallback && node.ProvisionState != StateCleanWait && node.ProvisionState != StateInspectWait {
		return false, nil
	}
	if holder := node.LockHolder(c.now()); holder != "" {
		return false, nodeLocked(node.UUID, holder)
	}
	target := ""
	if node.TargetProvisionState != nil {
		target = *node.TargetProvisionState
	}
	to, newTarget, _ := nextState(node.ProvisionState, target, EventResume)
	if err := store.Transition(ctx, q, node.ID, nil, node.ProvisionState, to, nullable(newTarget), nil); err != nil {
		return false, err
	}
	if _, err := c.enqueue(ctx, q, PoolAgent, KindProvision, node, store.JSONObject{"state": to, "phase": phaseResume}); err != nil {
		return false, err
	}
	c.addHistory(ctx, q, node.ID, "INFO", "provision", fmt.Sprintf("agent called back: %s -> %s", node.ProvisionState, to), "")
	return true, nil
}
