package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// AddHistoryUnlessRecent records e unless the node got an event of the
// same type and severity within the last within. Agents retry refused
// lookups every few seconds for minutes, and anyone on the provisioning
// network can send them from ever new addresses; one entry per episode
// tells the operator what happened without flooding the history (the log
// has every refusal).
func AddHistoryUnlessRecent(ctx context.Context, q Querier, e HistoryEvent, within time.Duration) error {
	_, err := q.ExecContext(ctx, `INSERT INTO node_history (uuid, node_id, severity, event_type, event, conductor, user_name)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE NOT EXISTS (SELECT 1 FROM node_history
			WHERE node_id = $2 AND event_type = $4 AND severity = $3 AND created_at > now() - $8 * interval '1 millisecond')`,
		uuid.NewString(), e.NodeID, e.Severity, e.EventType, e.Event, e.Conductor, e.User, millis(within))
	return translate(err)
}
