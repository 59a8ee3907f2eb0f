package conductor

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// NodeHistory returns a page of the node's history, oldest first, after the
// event markerUUID when set (Ironic's GET /v1/nodes/{node}/history).
func (c *Conductor) NodeHistory(ctx context.Context, ident, markerUUID string, limit int) (*store.Node, []store.HistoryEvent, error) {
	n, err := c.GetNode(ctx, ident)
	if err != nil {
		return nil, nil, err
	}
	if markerUUID != "" {
		if markerUUID, err = canonicalUUID("marker", markerUUID); err != nil {
			return nil, nil, err
		}
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	events, err := store.ListNodeHistory(ctx, c.db, n.ID, markerUUID, limit)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fault.New(fault.Invalid, "Marker %s could not be found.", markerUUID)
	}
	return n, events, err
}

// NodeHistoryEvent returns one event of the node's history.
func (c *Conductor) NodeHistoryEvent(ctx context.Context, ident, eventUUID string) (*store.Node, *store.HistoryEvent, error) {
	n, err := c.GetNode(ctx, ident)
	if err != nil {
		return nil, nil, err
	}
	notFound := fault.New(fault.NotFound, "Node history record %s could not be found.", eventUUID)
	if !IsUUID(eventUUID) {
		return nil, nil, notFound
	}
	u, _ := canonicalUUID("", eventUUID)
	e, err := store.GetHistoryEvent(ctx, c.db, n.ID, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notFound
	}
	return n, e, err
}

// recordMaintenance writes a maintenance change into the node's history.
func (c *Conductor) recordMaintenance(ctx context.Context, q store.Querier, n *store.Node, user string) {
	event := "Maintenance unset."
	if n.Maintenance {
		event = "Maintenance set."
		if n.MaintenanceReason != nil {
			event = fmt.Sprintf("Maintenance set: %s", *n.MaintenanceReason)
		}
	}
	c.AddHistory(ctx, q, n.ID, "INFO", "maintenance", event, user)
}
