package store

import (
	"context"
	"time"

	"github.com/lib/pq"
)

// ClaimPowerSync takes up to batch nodes due for a power read, served by one
// of drivers in the conductor group, and pushes their next due time
// interval ahead. Nodes someone is working on (locked, or with a power
// change pending) are skipped, and so are nodes in enroll, as in Ironic: their
// BMC address is not known to be good (discovery writes what an agent
// reported), so the conductor does not connect to it until an operator asks
// for manage. SKIP LOCKED gives concurrent conductors disjoint batches.
func ClaimPowerSync(ctx context.Context, q Querier, drivers []string, group string, batch int, interval time.Duration) ([]Node, error) {
	nodes := []Node{}
	err := q.SelectContext(ctx, &nodes, `UPDATE nodes SET power_sync_due_at = now() + $4 * interval '1 millisecond'
		WHERE id IN (
			SELECT id FROM nodes
			WHERE power_sync_due_at <= now() AND driver = ANY($1) AND conductor_group = $2
			  AND (reservation IS NULL OR reservation_expires_at <= now())
			  AND target_power_state IS NULL AND provision_state <> 'enroll'
			ORDER BY power_sync_due_at
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		RETURNING `+nodeColumns, pq.Array(drivers), group, batch, millis(interval))
	return nodes, translate(err)
}

// RecordPowerRead stores a successful power read: the state, a reset
// failure count and a cleared "power failure" fault. It writes nothing if
// someone started working on the node since the claim (ErrStale): the node
// is locked, a power action is pending, or it was locked and released
// meanwhile (its lock token, lockToken at the claim, moved on), since the
// read may predate that work.
func RecordPowerRead(ctx context.Context, q Querier, nodeID, lockToken int64, state string) error {
	// A machine found off that was recorded otherwise lost its agent: its
	// tokens are revoked, as after a power off through Ferric (SET reads
	// the row as it was).
	res, err := q.ExecContext(ctx, `UPDATE nodes
		SET power_state = $2, power_sync_failures = 0,
		    fault = CASE WHEN fault = 'power failure' THEN NULL ELSE fault END, updated_at = now(),
		    agent_token_generation = agent_token_generation +
		        CASE WHEN $2 = 'power off' AND power_state IS DISTINCT FROM 'power off' THEN 1 ELSE 0 END,
		    agent_token_revealed = agent_token_revealed AND NOT ($2 = 'power off' AND power_state IS DISTINCT FROM 'power off')
		WHERE id = $1 AND (reservation IS NULL OR reservation_expires_at <= now()) AND target_power_state IS NULL
		  AND lock_token = $3`,
		nodeID, state, lockToken)
	return staleResult(res, err)
}

// RecordPowerReadFailure counts a failed read; at maxFailures in a row the
// node gets fault "power failure" and lastError. It returns the count.
func RecordPowerReadFailure(ctx context.Context, q Querier, nodeID int64, maxFailures int, lastError string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `UPDATE nodes
		SET power_sync_failures = power_sync_failures + 1,
		    fault = CASE WHEN power_sync_failures + 1 >= $2 THEN 'power failure' ELSE fault END,
		    last_error = CASE WHEN power_sync_failures + 1 >= $2 THEN $3 ELSE last_error END
		WHERE id = $1
		RETURNING power_sync_failures`, nodeID, maxFailures, lastError)
	return n, translate(err)
}

// StaleNode is a node found stuck or timed out by a periodic check.
type StaleNode struct {
	ID               int64   `db:"id"`
	UUID             string  `db:"uuid"`
	Driver           string  `db:"driver"`
	ProvisionState   string  `db:"provision_state"`
	Target           *string `db:"target_provision_state"`
	TargetPowerState *string `db:"target_power_state"`
	// IPAHeartbeats: the agent of the node's current boot is an
	// ironic-python-agent that only heartbeats (ClaimTimedOutWaits).
	IPAHeartbeats bool `db:"ipa_heartbeats"`
}

const staleNodeColumns = `id, uuid, driver, provision_state, target_provision_state, target_power_state`

// ClaimTimedOutWaits locks up to limit nodes that have waited in one of
// states for longer than timeout, whose lock is free and which are not in
// maintenance (Ironic's filters). In wait call-back and clean wait, a
// checkin from the node's agent (under its current token generation)
// within timeout keeps it waiting, as Ironic's heartbeats touch
// provision_updated_at there, unless it is a bare ironic-python-agent
// heartbeat: Ferric does not drive IPA, so such an agent is not doing the
// work (IPAHeartbeats says so); a ramdisk reporting agent_status does it
// itself and counts. Inspect wait counts from its start, as Ironic's
// inspect_wait_timeout does. Call it in a transaction and move the nodes
// before committing.
func ClaimTimedOutWaits(ctx context.Context, q Querier, states []string, timeout time.Duration, limit int) ([]StaleNode, error) {
	nodes := []StaleNode{}
	err := q.SelectContext(ctx, &nodes, `SELECT `+staleNodeColumns+`,
			EXISTS (SELECT 1 FROM agent_checkins a WHERE a.node_id = n.id AND a.token_generation = n.agent_token_generation
				AND a.protocol = 'ipa' AND a.agent_status IS NULL) AS ipa_heartbeats
		FROM nodes n
		WHERE provision_state = ANY($1) AND provision_updated_at < now() - $2 * interval '1 millisecond'
		  AND NOT maintenance
		  AND (reservation IS NULL OR reservation_expires_at <= now())
		  AND (provision_state = 'inspect wait' OR NOT EXISTS (SELECT 1 FROM agent_checkins a WHERE a.node_id = n.id
			AND a.token_generation = n.agent_token_generation
			AND a.checked_in_at >= now() - $2 * interval '1 millisecond'
			AND NOT (a.protocol = 'ipa' AND a.agent_status IS NULL)))
		ORDER BY provision_updated_at
		LIMIT $3
		FOR UPDATE OF n SKIP LOCKED`, pq.Array(states), millis(timeout), limit)
	return nodes, translate(err)
}

// ClaimOrphanedNodes locks up to limit nodes left in one of states for
// longer than grace with no task queued or running for them and their lock
// free: work nobody will finish. Call it in a transaction.
func ClaimOrphanedNodes(ctx context.Context, q Querier, states []string, grace time.Duration, limit int) ([]StaleNode, error) {
	nodes := []StaleNode{}
	err := q.SelectContext(ctx, &nodes, `SELECT `+staleNodeColumns+`, false AS ipa_heartbeats FROM nodes n
		WHERE provision_state = ANY($1) AND provision_updated_at < now() - $2 * interval '1 millisecond'
		  AND (reservation IS NULL OR reservation_expires_at <= now())
		  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.node_id = n.id AND t.state IN ('queued', 'running'))
		LIMIT $3
		FOR UPDATE SKIP LOCKED`, pq.Array(states), millis(grace), limit)
	return nodes, translate(err)
}
