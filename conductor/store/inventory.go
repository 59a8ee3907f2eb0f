package store

import (
	"context"
	"time"
)

// Inventory is a row of node_inventories: the latest hardware inventory a
// node's agent sent.
type Inventory struct {
	NodeID          int64      `db:"node_id"`
	Inventory       JSONObject `db:"inventory"`
	PluginData      JSONObject `db:"plugin_data"`
	SystemSerial    *string    `db:"system_serial"`
	TokenGeneration int64      `db:"token_generation"`
	SourceAddress   string     `db:"source_address"`
	CreatedAt       time.Time  `db:"created_at"`
	UpdatedAt       time.Time  `db:"updated_at"`
}

// SaveInventory stores inv as the node's inventory, replacing any earlier
// one.
func SaveInventory(ctx context.Context, q Querier, inv *Inventory) error {
	_, err := q.ExecContext(ctx, `INSERT INTO node_inventories
			(node_id, inventory, plugin_data, system_serial, token_generation, source_address)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (node_id) DO UPDATE SET inventory = EXCLUDED.inventory,
			plugin_data = EXCLUDED.plugin_data, system_serial = EXCLUDED.system_serial,
			token_generation = EXCLUDED.token_generation, source_address = EXCLUDED.source_address,
			updated_at = now()`,
		inv.NodeID, inv.Inventory, inv.PluginData, inv.SystemSerial, inv.TokenGeneration, inv.SourceAddress)
	return translate(err)
}

// GetInventory returns the node's inventory.
func GetInventory(ctx context.Context, q Querier, nodeID int64) (*Inventory, error) {
	var inv Inventory
	err := q.GetContext(ctx, &inv, `SELECT node_id, inventory, plugin_data, system_serial, token_generation,
		source_address, created_at, updated_at FROM node_inventories WHERE node_id = $1`, nodeID)
	if err != nil {
		return nil, translate(err)
	}
	return &inv, nil
}

// InventoryGeneration returns the token generation under which the node's
// inventory arrived (which boot sent it), without reading the inventory.
func InventoryGeneration(ctx context.Context, q Querier, nodeID int64) (int64, error) {
	var gen int64
	err := q.GetContext(ctx, &gen, `SELECT token_generation FROM node_inventories WHERE node_id = $1`, nodeID)
	return gen, translate(err)
}
