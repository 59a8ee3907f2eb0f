package conductor

import (
	"context"
	"log/slog"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// errLookupFailed is the one answer an agent gets for an unknown machine, a
// node that expects no agent, or an ambiguous match, so that an agent learns
// nothing about other nodes. The log says which it was.
var errLookupFailed = fault.New(fault.NotFound, "Node could not be found.")

// LookupByMACs finds the node an agent runs on from its MAC addresses.
// Invalid addresses are dropped; none valid is a client error. The node must
// be in a state that expects an agent.
func (c *Conductor) LookupByMACs(ctx context.Context, addresses []string) (*store.Node, error) {
	var macs []string
	seen := map[string]bool{}
	for _, a := range addresses {
		if mac, ok := NormalizeMAC(a); ok && !seen[mac] {
			seen[mac] = true
			macs = append(macs, mac)
		}
	}
	if len(macs) == 0 {
		return nil, fault.New(fault.Invalid, "Lookup needs at least one valid MAC address in addresses.")
	}
	ids, err := store.NodeIDsByPortAddresses(ctx, c.db, macs)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		c.log.Info("lookup: no node has these MACs", "macs", macs)
		return nil, errLookupFailed
	case 1:
	default:
		c.log.Warn("lookup: MACs belong to several nodes; refusing to guess", "macs", macs, "node_ids", ids)
		return nil, errLookupFailed
	}
	n, err := store.GetNodeByID(ctx, c.db, ids[0])
	if err != nil {
		return nil, err
	}
	if !c.expectsAgent(n.ProvisionState) {
		c.log.Info("lookup: node does not expect an agent in its state",
			slog.String("node", n.UUID), slog.String("provision_state", n.ProvisionState))
		return nil, errLookupFailed
	}
	return n, nil
}

func (c *Conductor) expectsAgent(state string) bool {
	return lookupStates[state] || (c.opts.FastTrack && fastTrackLookupStates[state])
}
