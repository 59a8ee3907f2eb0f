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

// fastTrackEvents are the requests whose work fast track may hand to an
// agent already running on the node, as Ironic's fast track does for
// deploy and cleaning. An inspection always boots one: the inventory of a
// boot is taken once (conductor/agents), so it needs a new boot.
var fastTrackEvents = map[Event]bool{EventDeploy: true, EventProvide: true, EventClean: true}

// fastTrackable reports whether event's work on n may go on with the agent
// already running on it: fast track is on, the node has no error (Ironic's
// fast_track_able), and the agent holding the node's current token checked
// in within FastTrackTimeout. The caller holds the node's row lock.
func (c *Conductor) fastTrackable(ctx context.Context, q store.Querier, n *store.Node, event Event) (bool, error) {
	if !c.opts.FastTrack || !fastTrackEvents[event] || n.LastError != nil || n.Maintenance {
		return false, nil
	}
	return store.AgentCheckedInSince(ctx, q, n.ID, c.opts.FastTrackTimeout)
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
	if err := checkCleanSteps(req.CleanSteps); err != nil {
		return nil, err
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
		// Ironic's API refuses these before the lock too.
		if n.Protected && (event == EventDelete || event == EventRebuild) {
			return nodeProtected(n.UUID)
		}
		if n.Retired && event == EventProvide {
			return fault.New(fault.Invalid, "The provide operation can't be performed on node %s because it is retired.", n.UUID)
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
		fastTrack, err := c.fastTrackable(ctx, tx, n, event)
		if err != nil {
			return err
		}
		if err := store.Transition(ctx, tx, n.ID, nil, n.ProvisionState, to, nullable(newTarget), lastError); err != nil {
			return err
		}
		if !fastTrack { // an operator's action ends what the agent was doing, unless it is to go on
			if err := store.RevokeAgentTokens(ctx, tx, n.ID, nil); err != nil {
				return err
			}
		}
		if event == EventClean || event == EventProvide {
			// A manual clean's steps go to the agent; an automated clean's
			// are chosen when it starts (automatedCleanSteps).
			if err := store.SetCleanSteps(ctx, tx, n.ID, nil, req.CleanSteps); err != nil {
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
			if fastTrack {
				args["fast_track"] = true
			}
			if _, err := c.enqueue(ctx, tx, PoolOperator, KindProvision, n, args); err != nil {
				return err
			}
		}
		msg := fmt.Sprintf("%s: %s -> %s", req.Target, n.ProvisionState, to)
		if fastTrack {
			msg += " (fast track: the agent running on the node goes on, without a reboot)"
		}
		c.AddHistory(ctx, tx, n.ID, "INFO", "provision", msg, req.User)
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
	task  *store.Task
	node  *store.Node
	drv   drivers.Driver
	lock  *nodeLock
	phase string
	// fastTrack: the request found the node's agent up (fastTrackable);
	// the first state's work goes on with it instead of booting one.
	fastTrack bool
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
	fastTrack, _ := t.Args["fast_track"].(bool)
	run := &provisionRun{c: c, task: t, node: node, drv: drv, lock: lk, phase: phase, fastTrack: fastTrack}
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
		r.phase, r.fastTrack = phaseStart, false
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
		r.c.AddHistory(ctx, q, r.node.ID, severity, "provision", msg, "")
		return nil
	}
	var err error
	if workStates[to] { // the work goes on in this task: it records where it is, for recovery
		err = store.Transact(ctx, r.c.db, func(tx *sqlx.Tx) error {
			if err := write(tx); err != nil {
				return err
			}
			return store.SetTaskNodeState(ctx, tx, r.task.ID, r.task.ClaimToken, to)
		})
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
	if workStates[to] {
		r.task.Args["state"] = to // as written on the row: giveUp judges by it
	}
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
		if r.phase == phaseResume { // the agent's inventory has been stored by now
			return EventDone, r.endInspection(ctx)
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
		if r.phase == phaseResume { // the agent has cleaned
			return EventDone, r.endCleaning(ctx)
		}
		if r.agentless() {
			return EventDone, r.setPower(ctx, drivers.ActionPowerOff)
		}
		if automated := r.target() != StateManageable; automated {
			if !r.c.cleansAutomatically(r.node) {
				return EventDone, r.endCleaning(ctx)
			}
			if err := store.SetCleanSteps(ctx, r.c.db, r.node.ID, r.lock.fence(), r.c.automatedCleanSteps()); err != nil {
				return "", err
			}
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
		// Tear-down: the instance is forgotten whatever happens next, as in
		// Ironic; then the machine goes off and cleaning follows.
		if err := store.ClearInstance(ctx, r.c.db, r.node.ID, r.lock.fence()); err != nil {
			return "", err
		}
		return EventClean, r.setPower(ctx, drivers.ActionPowerOff)
	}
	return "", fmt.Errorf("internal: no work defined for state %s", state)
}

// target is the node's target provision state, or "".
func (r *provisionRun) target() string {
	if r.node.TargetProvisionState == nil {
		return ""
	}
	return *r.node.TargetProvisionState
}

// endCleaning ends a clean that needed a machine: it is powered off, unless
// fast track is on, in which case it stays as it is and an agent on it stays
// up for the next deploy, as Ironic's tear_down_inband_cleaning does.
func (r *provisionRun) endCleaning(ctx context.Context) error {
	if r.c.opts.FastTrack {
		return nil
	}
	return r.setPower(ctx, drivers.ActionPowerOff)
}

// endInspection ends an inspection the agent did: the machine is powered
// off, as Ironic's [inspector]power_off does, unless fast track is on (the
// agent stays up for what comes next).
func (r *provisionRun) endInspection(ctx context.Context) error {
	if r.c.opts.FastTrack {
		return nil
	}
	return r.setPower(ctx, drivers.ActionPowerOff)
}

// agentless reports whether the driver provisions this node without an agent.
func (r *provisionRun) agentless() bool {
	a, ok := r.drv.(drivers.AgentlessProvisioner)
	return ok && a.ProvisionsWithoutAgent(driverNode(r.node))
}

// bootAgent boots the node into the deploy agent and waits for its call;
// with fast track, an agent already up takes the work on its next checkin.
func (r *provisionRun) bootAgent(ctx context.Context) (Event, error) {
	if r.fastTrack && r.poweredOn(ctx) {
		r.c.AddHistory(ctx, r.c.db, r.node.ID, "INFO", "provision",
			"Fast track: no reboot; the agent running on the node is handed the work at its next checkin.", "")
		return EventWait, nil
	}
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

// setPower changes the node's power and waits until the BMC reports it
// (changePower), recording the state found.
func (r *provisionRun) setPower(ctx context.Context, action drivers.PowerAction) error {
	found, err := r.c.changePower(ctx, r.drv, r.node, action, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	state := string(found)
	return store.Transact(ctx, r.c.db, func(tx *sqlx.Tx) error {
		if err := store.SetPowerState(ctx, tx, r.node.ID, r.lock.fence(), &state, nil); err != nil {
			return err
		}
		// A power off or reboot ends the agent's boot: its token goes too.
		return revokeAgentTokensOnPower(ctx, tx, r.node.ID, r.lock.fence(), action)
	})
}

// poweredOn reports whether the machine is on, asking the BMC when the
// driver can (as Ironic's is_fast_track does), else by the recorded state.
// A failed read counts as off: the caller then boots the agent the usual way.
func (r *provisionRun) poweredOn(ctx context.Context) bool {
	reader, ok := r.drv.(drivers.PowerReader)
	if !ok {
		return r.node.PowerState != nil && *r.node.PowerState == string(drivers.PowerOn)
	}
	ps, err := reader.PowerState(ctx, driverNode(r.node))
	if err != nil {
		r.c.log.Warn("fast track: reading the power state failed; booting the agent instead", "node", r.node.UUID, "error", err)
		return false
	}
	return ps == drivers.PowerOn
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
