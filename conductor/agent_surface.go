package conductor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
)

// This file is the conductor's surface for conductor/agents, the agent side
// (lookup, checkin, heartbeat, inventory uploads): what an agent's report
// may do to a node (resume or fail its wait), its history, and the settings
// the agent side shares with the rest of the conductor. The agent side does
// everything else through the store; the conductor never calls it.

// DB is the database the conductor works on; the agent side runs its own
// transactions on it.
func (c *Conductor) DB() *sqlx.DB { return c.db }

// Logger is the conductor's logger.
func (c *Conductor) Logger() *slog.Logger { return c.log }

// FastTrack reports whether fast track is on (Options.FastTrack): agents may
// look up nodes at rest, and stay up there for the next deploy or clean.
func (c *Conductor) FastTrack() bool { return c.opts.FastTrack }

// ExpectsAgent reports whether a node in provision state expects an agent
// to look it up: a deploy, clean or inspection under way, or, with fast
// track, a node at rest (enroll, manageable, available).
func (c *Conductor) ExpectsAgent(state string) bool {
	return lookupStates[state] || (c.opts.FastTrack && fastTrackLookupStates[state])
}

// ResumeAgentWait resumes a node waiting for its agent (wait call-back,
// clean wait, inspect wait): its work continues as a task in the agent pool
// (boot from disk and reboot, end the clean, end the inspection). It
// reports whether the node resumed; a node in any other state is left as it
// is. The caller holds the node's row lock (SELECT ... FOR UPDATE) in q's
// transaction; a node whose lock a conductor holds is fault.Locked.
func (c *Conductor) ResumeAgentWait(ctx context.Context, q store.Querier, node *store.Node) (bool, error) {
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
	c.AddHistory(ctx, q, node.ID, "INFO", "provision", fmt.Sprintf("agent called back: %s -> %s", node.ProvisionState, to), "")
	return true, nil
}

// FailAgentWait moves a node waiting for its agent to the failed state of
// its wait (deploy failed, clean failed, inspect failed) with reason as
// last_error and in its history. The caller holds the node's row lock in
// q's transaction; a node whose lock a conductor holds is fault.Locked.
func (c *Conductor) FailAgentWait(ctx context.Context, q store.Querier, node *store.Node, reason string) error {
	if holder := node.LockHolder(c.now()); holder != "" {
		return nodeLocked(node.UUID, holder)
	}
	target := ""
	if node.TargetProvisionState != nil {
		target = *node.TargetProvisionState
	}
	to, newTarget, ok := nextState(node.ProvisionState, target, EventFail)
	if !ok {
		return fmt.Errorf("internal: no failure transition from %s", node.ProvisionState)
	}
	if err := store.Transition(ctx, q, node.ID, nil, node.ProvisionState, to, nullable(newTarget), &reason); err != nil {
		return err
	}
	c.AddHistory(ctx, q, node.ID, "ERROR", "provision", reason, "")
	return nil
}

// AddHistory records an event in the node's history under this conductor's
// name. History is an aid, not a source of truth: failing to write it is
// logged, not returned.
func (c *Conductor) AddHistory(ctx context.Context, q store.Querier, nodeID int64, severity, eventType, event, user string) {
	e := store.HistoryEvent{NodeID: nodeID, Severity: severity, EventType: eventType, Event: event, Conductor: &c.opts.Name}
	if user != "" {
		e.User = &user
	}
	if err := store.AddHistory(ctx, q, e); err != nil {
		c.log.Warn("writing node history failed", "node_id", nodeID, "error", err)
	}
}
