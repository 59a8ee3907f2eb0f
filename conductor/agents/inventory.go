package agents

import (
	"context"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/inventory"
	"github.com/ferric-metal/ferric/conductor/store"
)

// acceptsInventory reports whether an agent's inventory may be stored with
// the node: during inspection, or in enroll when discovery (which enrolls
// from inventories) is on. Anyone on the provisioning network can send
// one, so no other state takes it.
func (a *Agents) acceptsInventory(n *store.AgentNode) bool {
	switch n.ProvisionState {
	case conductor.StateInspecting, conductor.StateInspectWait:
		return true
	case conductor.StateEnroll:
		return a.opts.Discovery.Enabled
	}
	return false
}

// saveInventory stores the inventory with the node, under its current token
// generation, and updates its properties from it. During inspection it
// reports false, and changes nothing, when this boot's inventory is stored
// already (the operator's inspection started a new boot; anyone on the
// network may send data). A node in enroll, with discovery on, takes the
// latest: a machine rebooted by hand is discovered again, as discovery lets
// anyone on the network do anyway.
func (a *Agents) saveInventory(ctx context.Context, q store.Querier, n *store.AgentNode, data *inventory.Data, source string) (bool, error) {
	var serial *string
	if s := inventory.EvidenceOf(&data.Inventory).Serial; s != "" {
		serial = &s
	}
	saved, err := store.SaveInventory(ctx, q, &store.Inventory{
		NodeID: n.ID, Inventory: data.Stored, PluginData: data.PluginData, SystemSerial: serial,
		TokenGeneration: n.TokenGeneration, SourceAddress: source,
	}, n.ProvisionState != conductor.StateEnroll)
	if err != nil || !saved {
		return false, err
	}
	if props := inventory.Properties(data); len(props) > 0 {
		return true, store.MergeProperties(ctx, q, n.ID, nil, props)
	}
	return true, nil
}
