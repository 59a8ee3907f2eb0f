package conductor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
)

// Conductors heartbeat every conductorHeartbeat and count as dead after
// conductorDeadAfter without one (Ironic's 10 s and 60 s).
const (
	conductorHeartbeat = 10 * time.Second
	conductorDeadAfter = 60 * time.Second
)

// PeriodicConfig configures RunPeriodic. Zero values take the defaults noted.
type PeriodicConfig struct {
	Group string // conductor group served; default ""

	PowerSyncInterval    time.Duration // 0 disables power sync
	PowerSyncWorkers     int           // BMC reads in flight; default 16
	PowerSyncTimeout     time.Duration // per read; default 30 s
	PowerSyncMaxFailures int           // reads failed in a row before fault; default 3
	ForcePowerState      bool          // correct the hardware instead of the record

	// CallbackTimeout is how long a node waiting for its agent may go
	// without hearing from it (wait call-back, clean wait: since its last
	// checkin; inspect wait: since the wait began) before it fails and is
	// powered off: Ironic's deploy_callback_timeout (and
	// clean_callback_timeout, inspect_wait_timeout). Default 30 min;
	// negative: never.
	CallbackTimeout time.Duration
	// CheckInterval is how often timeouts, orphans and dead conductors'
	// tasks are looked for. Default 5 s.
	CheckInterval time.Duration
}

func (p PeriodicConfig) withDefaults() PeriodicConfig {
	if p.PowerSyncWorkers <= 0 {
		p.PowerSyncWorkers = 16
	}
	if p.PowerSyncTimeout <= 0 {
		p.PowerSyncTimeout = 30 * time.Second
	}
	if p.PowerSyncMaxFailures <= 0 {
		p.PowerSyncMaxFailures = 3
	}
	if p.CallbackTimeout == 0 {
		p.CallbackTimeout = 30 * time.Minute
	}
	if p.CheckInterval <= 0 {
		p.CheckInterval = 5 * time.Second
	}
	return p
}

// RunPeriodic registers this conductor, keeps it registered, and runs the
// periodic work until ctx ends; then it unregisters. Every query claims its
// share with SKIP LOCKED, so any number of conductors run it side by side
// with no coordinator. It returns when all its goroutines have ended.
func (c *Conductor) RunPeriodic(ctx context.Context, cfg PeriodicConfig) error {
	cfg = cfg.withDefaults()
	if err := store.RegisterConductor(ctx, c.db, c.opts.Name, c.drivers.EnabledNames(), cfg.Group); err != nil {
		return fmt.Errorf("register conductor: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := store.UnregisterConductor(uctx, c.db, c.opts.Name); err != nil {
			c.log.Warn("unregistering conductor failed; it will show as dead", "error", err)
		}
	}()

	var wg sync.WaitGroup
	every := func(interval time.Duration, name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() { // ends when ctx ends
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					c.log.Warn("periodic work failed; will try again", "job", name, "error", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	every(conductorHeartbeat, "heartbeat", c.heartbeat(cfg.Group))
	every(cfg.CheckInterval, "recover tasks", c.recoverTasks)
	every(cfg.CheckInterval, "orphaned nodes", c.failOrphanedNodes)
	if cfg.CallbackTimeout > 0 {
		every(min(cfg.CallbackTimeout/10, time.Minute), "callback timeouts", func(ctx context.Context) error {
			return c.failTimedOutWaits(ctx, cfg.CallbackTimeout)
		})
	}
	every(time.Hour, "task cleanup", func(ctx context.Context) error {
		_, err := store.DeleteFinishedTasks(ctx, c.db, 24*time.Hour)
		return err
	})
	if cfg.PowerSyncInterval > 0 {
		every(max(time.Second, cfg.PowerSyncInterval/20), "power sync", func(ctx context.Context) error {
			_, err := c.SyncPowerStates(ctx, cfg)
			return err
		})
	}
	wg.Wait()
	return nil
}

func (c *Conductor) heartbeat(group string) func(context.Context) error {
	return func(ctx context.Context) error {
		err := store.HeartbeatConductor(ctx, c.db, c.opts.Name)
		if errors.Is(err, store.ErrNotFound) { // removed by someone: register again
			return store.RegisterConductor(ctx, c.db, c.opts.Name, c.drivers.EnabledNames(), group)
		}
		return err
	}
}

// recoverTasks takes over tasks whose conductor stopped renewing their lease
// (it died or lost the database): retry-safe ones run again, others fail and
// their node moves to the failed state of where it was.
func (c *Conductor) recoverTasks(ctx context.Context) error {
	tasks, err := store.ClaimExpiredTasks(ctx, c.db, c.opts.Name, 100, c.opts.TaskLease)
	if err != nil {
		return err
	}
	for _, et := range tasks {
		t := et.Task
		owner := "(unknown)"
		if et.PreviousOwner != nil {
			owner = *et.PreviousOwner
		}
		spec := taskSpecs[t.Kind]
		msg := fmt.Sprintf("conductor %s stopped responding during the task", owner)
		if spec.retrySafe && t.Attempt < t.MaxAttempts {
			c.log.Warn("recovering a dead conductor's task; it will run again", "task_id", t.ID, "kind", t.Kind, "owner", owner)
			err = store.RetryTask(ctx, c.db, t.ID, t.ClaimToken, 0, &msg)
		} else {
			c.log.Warn("recovering a dead conductor's task; it fails", "task_id", t.ID, "kind", t.Kind, "owner", owner)
			c.giveUp(ctx, &t, errors.New(msg))
			err = store.FinishTask(ctx, c.db, t.ID, t.ClaimToken, store.TaskFailed, &msg)
		}
		if err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return err
		}
	}
	return nil
}

// failOrphanedNodes fails nodes left in a working state that no task will
// ever continue. The grace of two task leases lets a task being recovered
// run first.
func (c *Conductor) failOrphanedNodes(ctx context.Context) error {
	states := make([]string, 0, len(workStates))
	for s := range workStates {
		states = append(states, s)
	}
	sort.Strings(states)
	return c.failStale(ctx, func(tx *sqlx.Tx) ([]store.StaleNode, error) {
		return store.ClaimOrphanedNodes(ctx, tx, states, 2*c.opts.TaskLease, 100)
	}, func(n store.StaleNode) string {
		return fmt.Sprintf("The work of state %s was interrupted (its conductor stopped) and nothing resumed it.", n.ProvisionState)
	}, false)
}

// failTimedOutWaits fails nodes whose agent did not call back in time, with
// Ironic's message for each wait, and powers them off: whatever runs there
// is not doing the work.
func (c *Conductor) failTimedOutWaits(ctx context.Context, timeout time.Duration) error {
	return c.failStale(ctx, func(tx *sqlx.Tx) ([]store.StaleNode, error) {
		return store.ClaimTimedOutWaits(ctx, tx, waitStates, timeout, 100)
	}, func(n store.StaleNode) string {
		msg := timeoutMessages[n.ProvisionState](n.UUID, timeout)
		if why, ok := ipaTimeoutReasons[n.ProvisionState]; ok && n.IPAHeartbeats {
			msg += " " + why
		}
		return msg
	}, true)
}

// ipaTimeoutReasons say why a wait whose agent is an ironic-python-agent
// timed out although it heartbeats: Ferric does not drive IPA.
var ipaTimeoutReasons = map[string]string{
	StateWaitCallback: "An ironic-python-agent heartbeats from the node, but Ferric does not drive IPA, so nothing wrote the image: boot ferric-agent to deploy (docs/agent-protocol.md).",
	StateCleanWait:    "An ironic-python-agent heartbeats from the node, but Ferric does not drive IPA, so nothing cleaned the disks: boot ferric-agent to clean (docs/agent-protocol.md).",
}

// timeoutMessages are the last_error of each wait that timed out: Ironic's
// message, then Ferric's reason.
var timeoutMessages = map[string]func(node string, timeout time.Duration) string{
	StateWaitCallback: func(node string, timeout time.Duration) string {
		return fmt.Sprintf("Timeout reached while waiting for callback for node %s. No agent checked in for %s (callback timeout).", node, timeout)
	},
	StateCleanWait: func(_ string, timeout time.Duration) string {
		return fmt.Sprintf("Timeout reached while cleaning the node. Please check if the ramdisk responsible for the cleaning is running on the node. "+
			"No agent checked in for %s (callback timeout).", timeout)
	},
	StateInspectWait: func(_ string, timeout time.Duration) string {
		return fmt.Sprintf("Timeout reached while inspecting the node. Please check if the ramdisk responsible for the inspection is running on the node. "+
			"The inspection did not end within %s (callback timeout).", timeout)
	},
}

// failStale moves the nodes claim returns to the failed state of where they
// were, with reason as last_error; with powerOff, a power off is queued for
// each in the same transaction (unless a power change is pending already).
func (c *Conductor) failStale(ctx context.Context, claim func(*sqlx.Tx) ([]store.StaleNode, error), reason func(store.StaleNode) string, powerOff bool) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		nodes, err := claim(tx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			failed := failedStates[n.ProvisionState]
			target := n.Target
			if stableStates[failed] {
				target = nil
			}
			msg := reason(n)
			if err := store.Transition(ctx, tx, n.ID, nil, n.ProvisionState, failed, target, &msg); err != nil {
				return err
			}
			c.AddHistory(ctx, tx, n.ID, "ERROR", "provision", msg, "")
			if powerOff && n.TargetPowerState == nil {
				if err := c.queuePowerOff(ctx, tx, n, msg); err != nil {
					return err
				}
			}
			c.log.Warn("node failed by periodic check", "node", n.UUID, "from", n.ProvisionState, "to", failed, "reason", msg)
		}
		return nil
	})
}

// queuePowerOff queues a power off of a failed node, keeping the failure as
// its last_error. The caller holds the node's row lock.
func (c *Conductor) queuePowerOff(ctx context.Context, tx *sqlx.Tx, n store.StaleNode, lastError string) error {
	if err := store.SetTargetPowerState(ctx, tx, n.ID, string(drivers.PowerOff), &lastError); err != nil {
		return err
	}
	node := &store.Node{ID: n.ID, Driver: n.Driver}
	args := store.JSONObject{"action": string(drivers.ActionPowerOff), "timeout_s": 0}
	if _, err := c.enqueue(ctx, tx, PoolOperator, KindPower, node, args); err != nil {
		return err
	}
	c.AddHistory(ctx, tx, n.ID, "INFO", "power", fmt.Sprintf("%s requested after the failure", drivers.ActionPowerOff), "")
	return nil
}

// PowerSyncStats reports one round of power sync.
type PowerSyncStats struct {
	Read, Changed, Failed int
}

// SyncPowerStates reads the power state of every node due for it, in
// batches claimed with SKIP LOCKED, with at most cfg.PowerSyncWorkers reads
// in flight, until no node is due.
func (c *Conductor) SyncPowerStates(ctx context.Context, cfg PeriodicConfig) (PowerSyncStats, error) {
	cfg = cfg.withDefaults()
	var stats PowerSyncStats
	var mu sync.Mutex
	batch := cfg.PowerSyncWorkers * 4
	for ctx.Err() == nil {
		nodes, err := store.ClaimPowerSync(ctx, c.db, c.drivers.EnabledNames(), cfg.Group, batch, cfg.PowerSyncInterval)
		if err != nil || len(nodes) == 0 {
			return stats, err
		}
		sem := make(chan struct{}, cfg.PowerSyncWorkers)
		var wg sync.WaitGroup
		for i := range nodes {
			sem <- struct{}{}
			wg.Add(1)
			go func() { // bounded by sem; ends when the read times out at the latest
				defer wg.Done()
				defer func() { <-sem }()
				outcome := c.syncOne(ctx, &nodes[i], cfg)
				mu.Lock()
				defer mu.Unlock()
				stats.Read++
				switch outcome {
				case syncChanged:
					stats.Changed++
				case syncFailed:
					stats.Failed++
				}
			}()
		}
		wg.Wait()
	}
	return stats, ctx.Err()
}

type syncOutcome int

const (
	syncSame syncOutcome = iota
	syncChanged
	syncFailed
)

func (c *Conductor) syncOne(ctx context.Context, n *store.Node, cfg PeriodicConfig) syncOutcome {
	drv, ok := c.drivers.Get(n.Driver)
	reader, canRead := drv.(drivers.PowerReader)
	if !ok || !canRead {
		return syncSame
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.PowerSyncTimeout)
	state, err := reader.PowerState(rctx, driverNode(n))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return syncSame // shutting down: not the BMC's fault
		}
		msg := fmt.Sprintf("Power state sync failed %d or more times in a row; last error: %v", cfg.PowerSyncMaxFailures, err)
		count, werr := store.RecordPowerReadFailure(ctx, c.db, n.ID, cfg.PowerSyncMaxFailures, msg)
		if werr != nil {
			c.log.Warn("recording a power sync failure failed", "node", n.UUID, "error", werr)
		} else if count == cfg.PowerSyncMaxFailures {
			c.AddHistory(ctx, c.db, n.ID, "ERROR", "power_sync", msg, "")
		}
		return syncFailed
	}
	recovered := n.Fault != nil && *n.Fault == "power failure"
	drift := n.PowerState != nil && *n.PowerState != string(state)
	if drift && cfg.ForcePowerState {
		return c.forcePower(ctx, n, state)
	}
	if !drift && !recovered && n.PowerSyncFailures == 0 && n.PowerState != nil {
		return syncSame // nothing to write
	}
	if err := store.RecordPowerRead(ctx, c.db, n.ID, n.LockToken, string(state)); err != nil {
		if !errors.Is(err, store.ErrStale) {
			c.log.Warn("recording a power read failed", "node", n.UUID, "error", err)
		}
		return syncSame
	}
	if recovered {
		c.AddHistory(ctx, c.db, n.ID, "INFO", "power_sync", "BMC answers again; power failure fault cleared", "")
	}
	if drift {
		c.AddHistory(ctx, c.db, n.ID, "WARNING", "power_sync",
			fmt.Sprintf("Power state changed outside Ferric: recorded %s, found %s", *n.PowerState, state), "")
		return syncChanged
	}
	return syncSame
}

// forcePower sets the hardware back to the recorded power state.
func (c *Conductor) forcePower(ctx context.Context, n *store.Node, found drivers.PowerState) syncOutcome {
	drv, _ := c.drivers.Get(n.Driver)
	setter, ok := drv.(drivers.PowerSetter)
	if !ok {
		return syncSame
	}
	lk, err := c.lockNode(ctx, n)
	if err != nil {
		return syncSame // someone is working on it; next round
	}
	defer c.release(lk)
	action := drivers.ActionPowerOff
	if *n.PowerState == string(drivers.PowerOn) {
		action = drivers.ActionPowerOn
	}
	msg := fmt.Sprintf("Power state found %s, recorded %s: setting the hardware back (force power state)", found, *n.PowerState)
	c.AddHistory(ctx, c.db, n.ID, "WARNING", "power_sync", msg, "")
	if err := setter.SetPowerState(lk.ctx, driverNode(n), action, 0); err != nil {
		c.log.Warn("forcing power state failed", "node", n.UUID, "error", err)
		return syncFailed
	}
	// The agent is gone if the machine was found off, or is now powered off.
	if found == drivers.PowerOff || action == drivers.ActionPowerOff {
		if err := store.RevokeAgentTokens(lk.ctx, c.db, n.ID, lk.fence()); err != nil {
			c.log.Warn("revoking agent tokens after forcing the power state failed", "node", n.UUID, "error", err)
		}
	}
	return syncChanged
}
