package conductor

import (
	"context"
	"errors"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// NodeInventory returns the hardware inventory last reported for the node
// named by ident (UUID or name), in Ironic's shape: {"inventory": {...},
// "plugin_data": {...}}. A node without one is fault.NotFound.
func (c *Conductor) NodeInventory(ctx context.Context, ident string) (map[string]any, error) {
	n, err := c.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	inv, err := store.GetInventory(ctx, c.db, n.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "Node %s has no inventory: it has not been inspected by an agent.", n.UUID)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"inventory": map[string]any(inv.Inventory), "plugin_data": map[string]any(inv.PluginData)}, nil
}
