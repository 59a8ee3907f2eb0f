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

// SaveInventory stores inv as the node's inventory. With oncePerBoot it
// replaces only one of an earlier token generation (an earlier boot), and
// reports false, changing nothing, when an inventory of inv's generation or
// a later one is stored already: the first one of a boot stands. Without,
// it replaces any.
func SaveInventory(ctx context.Context, q Querier, inv *Inventory, oncePerBoot bool) (bool, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO node_inventories
			(node_id, inventory, plugin_data, system_serial, token_generation, source_address)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (node_id) DO UPDATE SET inventory = EXCLUDED.inventory,
			plugin_data = EXCLUDED.plugin_data, system_serial = EXCLUDED.system_serial,
			token_generation = EXCLUDED.token_generation, source_address = EXCLUDED.source_address,
			updated_at = now()
		WHERE NOT $7 OR node_inventories.token_generation < EXCLUDED.token_generation`,
		inv.NodeID, inv.Inventory, inv.PluginData, inv.SystemSerial, inv.TokenGeneration, inv.SourceAddress, oncePerBoot)
	if err != nil {
		return false, translate(err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
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
