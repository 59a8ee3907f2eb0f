package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// HistoryEvent is a row of node_history: what happened to a node and why,
// for operators (Ironic's node history).
type HistoryEvent struct {
	ID        int64     `db:"id"`
	UUID      string    `db:"uuid"`
	NodeID    int64     `db:"node_id"`
	CreatedAt time.Time `db:"created_at"`
	Severity  string    `db:"severity"`
	EventType string    `db:"event_type"`
	Event     string    `db:"event"`
	Conductor *string   `db:"conductor"`
	User      *string   `db:"user_name"`
}

// AddHistory records an event on a node.
func AddHistory(ctx context.Context, q Querier, e HistoryEvent) error {
	_, err := q.ExecContext(ctx, `INSERT INTO node_history (uuid, node_id, severity, event_type, event, conductor, user_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, uuid.NewString(), e.NodeID, e.Severity, e.EventType, e.Event, e.Conductor, e.User)
	return translate(err)
}

// NodeHistory returns a node's events, oldest first.
func NodeHistory(ctx context.Context, q Querier, nodeID int64) ([]HistoryEvent, error) {
	events := []HistoryEvent{}
	err := q.SelectContext(ctx, &events, `SELECT id, uuid, node_id, created_at, severity, event_type, event, conductor, user_name
		FROM node_history WHERE node_id = $1 ORDER BY id`, nodeID)
	return events, translate(err)
}

// ListNodeHistory returns a page of a node's events, oldest first, after
// the event markerUUID when it is set (an unknown marker is ErrNotFound).
func ListNodeHistory(ctx context.Context, q Querier, nodeID int64, markerUUID string, limit int) ([]HistoryEvent, error) {
	const columns = `id, uuid, node_id, created_at, severity, event_type, event, conductor, user_name`
	events := []HistoryEvent{}
	if markerUUID == "" {
		err := q.SelectContext(ctx, &events, `SELECT `+columns+` FROM node_history
			WHERE node_id = $1 ORDER BY id LIMIT $2`, nodeID, limit)
		return events, translate(err)
	}
	var markerID int64
	if err := q.GetContext(ctx, &markerID, `SELECT id FROM node_history WHERE uuid = $1 AND node_id = $2`, markerUUID, nodeID); err != nil {
		return nil, translate(err)
	}
	err := q.SelectContext(ctx, &events, `SELECT `+columns+` FROM node_history
		WHERE node_id = $1 AND id > $2 ORDER BY id LIMIT $3`, nodeID, markerID, limit)
	return events, translate(err)
}

// GetHistoryEvent returns one of a node's events by its UUID.
func GetHistoryEvent(ctx context.Context, q Querier, nodeID int64, eventUUID string) (*HistoryEvent, error) {
	var e HistoryEvent
	err := q.GetContext(ctx, &e, `SELECT id, uuid, node_id, created_at, severity, event_type, event, conductor, user_name
		FROM node_history WHERE node_id = $1 AND uuid = $2`, nodeID, eventUUID)
	if err != nil {
		return nil, translate(err)
	}
	return &e, nil
}
