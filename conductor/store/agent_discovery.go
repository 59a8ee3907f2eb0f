package store

import (
	"context"
	"strings"
	"time"

	"github.com/lib/pq"
)

// EvidenceHit is one piece of evidence found on a node, with the node;
// Kind is one of conductor/inventory's kinds: mac, bmc or serial.
type EvidenceHit struct {
	Kind  string `db:"kind"`
	Value string `db:"value"`
	AgentNode
}

// FindEvidence returns the nodes that own any of the given MACs (normalised),
// BMC addresses (lower-case) or serial number, with the agent's view of
// each, in one round trip through three indexes. Each kind returns at most
// perKind+1 hits, so a value shared by thousands of nodes (a Redfish
// aggregator's address) costs no more than that; truncated reports the
// kinds that had more than perKind.
func FindEvidence(ctx context.Context, q Querier, macs, bmcs []string, serial *string, perKind int) (hits []EvidenceHit, truncated map[string]bool, err error) {
	hits = []EvidenceHit{}
	err = q.SelectContext(ctx, &hits, `WITH hit AS (
			(SELECT 'mac' AS kind, address AS value, node_id FROM ports WHERE address = ANY($1) LIMIT $4)
			UNION ALL
			(SELECT 'bmc', bmc_address, id FROM nodes WHERE bmc_address = ANY($2) LIMIT $4)
			UNION ALL
			(SELECT 'serial', system_serial, node_id FROM node_inventories WHERE system_serial = $3 LIMIT $4))
		SELECT hit.kind, hit.value, `+qualifiedAgentNodeColumns("n")+`
		FROM hit JOIN nodes n ON n.id = hit.node_id`,
		pq.Array(macs), pq.Array(bmcs), serial, perKind+1)
	if err != nil {
		return nil, nil, translate(err)
	}
	count := map[string]int{}
	for _, h := range hits {
		count[h.Kind]++
	}
	truncated = map[string]bool{}
	for kind, n := range count {
		truncated[kind] = n > perKind
	}
	return hits, truncated, nil
}

// qualifiedAgentNodeColumns qualifies agentNodeColumns with a table alias.
func qualifiedAgentNodeColumns(alias string) string {
	cols := strings.Split(agentNodeColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// LockDiscoveryKeys takes transaction-scoped advisory locks on keys, in the
// order given (callers sort them, so that two transactions never wait on
// each other in opposite orders). Discoveries that share any key run one
// after the other; the second then sees the node the first created.
func LockDiscoveryKeys(ctx context.Context, q Querier, keys []int64) error {
	_, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, pq.Array(keys))
	return translate(err)
}

// CountDiscoveries counts the nodes discovered from source within the last
// window.
func CountDiscoveries(ctx context.Context, q Querier, source string, window time.Duration) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM discoveries
		WHERE source_address = $1 AND discovered_at > now() - $2 * interval '1 millisecond'`, source, millis(window))
	return n, translate(err)
}

// RecordDiscovery notes that source caused node to be enrolled, and forgets
// that source's discoveries older than keep, which no quota looks at any
// more.
func RecordDiscovery(ctx context.Context, q Querier, nodeUUID, source string, keep time.Duration) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM discoveries
		WHERE source_address = $1 AND discovered_at < now() - $2 * interval '1 millisecond'`, source, millis(keep)); err != nil {
		return translate(err)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO discoveries (node_uuid, source_address) VALUES ($1, $2)`, nodeUUID, source)
	return translate(err)
}
