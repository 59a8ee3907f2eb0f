package conductor

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
)

// SetMaintenance puts a node in maintenance with an optional reason (a node
// already in maintenance gets the new reason). Like every node update it is
// refused while the node's lock is held; unlike a PATCH it is allowed while
// work is under way, which is when operators need it most.
func (c *Conductor) SetMaintenance(ctx context.Context, ident string, reason *string, user string) error {
	if err := checkOptText("reason", reason, maxReason); err != nil {
		return err
	}
	return c.updateMaintenance(ctx, ident, user, func(n *store.Node) {
		n.Maintenance, n.MaintenanceReason = true, reason
	})
}

// ClearMaintenance takes a node out of maintenance, clearing the reason and
// the fault, as Ironic does.
func (c *Conductor) ClearMaintenance(ctx context.Context, ident string, user string) error {
	return c.updateMaintenance(ctx, ident, user, func(n *store.Node) {
		n.Maintenance, n.MaintenanceReason, n.Fault = false, nil, nil
	})
}

// updateMaintenance applies change and records it in the node's history
// (user: who asked).
func (c *Conductor) updateMaintenance(ctx context.Context, ident, user string, change func(*store.Node)) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		change(n)
		if err := store.UpdateNode(ctx, tx, n); err != nil {
			return err
		}
		c.recordMaintenance(ctx, tx, n, user)
		return nil
	})
}
