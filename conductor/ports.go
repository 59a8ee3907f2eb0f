package conductor

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// PortSpec is what an operator supplies to create a port.
type PortSpec struct {
	UUID                string
	NodeIdent           string // UUID (or name) of the owning node
	Address             string
	PXEEnabled          *bool // default true
	LocalLinkConnection map[string]any
	PhysicalNetwork     *string
	Extra               map[string]any
}

// CreatePort creates a port on a node. The MAC address is normalised; a MAC
// already used by any port is a conflict.
func (c *Conductor) CreatePort(ctx context.Context, spec PortSpec) (*store.Port, error) {
	if spec.Address == "" {
		return nil, fault.New(fault.Invalid, "Mandatory field missing: address.")
	}
	mac, ok := NormalizeMAC(spec.Address)
	if !ok {
		return nil, fault.New(fault.Invalid, "Expected a MAC address but received %q.", spec.Address)
	}
	if spec.NodeIdent == "" {
		return nil, fault.New(fault.Invalid, "Mandatory field missing: node_uuid.")
	}
	if spec.UUID != "" {
		u, err := uuid.Parse(spec.UUID)
		if err != nil {
			return nil, fault.New(fault.Invalid, "Expected a UUID but received %q.", spec.UUID)
		}
		spec.UUID = u.String()
	}
	node, err := store.GetNode(ctx, c.db, spec.NodeIdent)
	if errors.Is(err, store.ErrNotFound) {
		// Ironic answers 400 here: the node is a field of the body, not the URL.
		return nil, fault.New(fault.Invalid, "Node %s could not be found.", spec.NodeIdent)
	}
	if err != nil {
		return nil, err
	}
	p := &store.Port{
		UUID:                spec.UUID,
		Address:             mac,
		NodeID:              node.ID,
		NodeUUID:            node.UUID,
		PXEEnabled:          spec.PXEEnabled == nil || *spec.PXEEnabled,
		LocalLinkConnection: spec.LocalLinkConnection,
		PhysicalNetwork:     spec.PhysicalNetwork,
		Extra:               spec.Extra,
	}
	if err := store.CreatePort(ctx, c.db, p); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			switch ce.Constraint {
			case store.PortAddressUnique:
				return nil, fault.Wrap(fault.Conflict, err, "A port with MAC address %s already exists.", mac)
			case store.PortUUIDUnique:
				return nil, fault.Wrap(fault.Conflict, err, "A port with UUID %s already exists.", p.UUID)
			case store.PortNodeForeignKey: // the node was deleted meanwhile
				return nil, fault.Wrap(fault.Invalid, err, "Node %s could not be found.", spec.NodeIdent)
			}
		}
		return nil, err
	}
	return store.GetPortByUUID(ctx, c.db, p.UUID)
}

// GetPort returns a port by UUID.
func (c *Conductor) GetPort(ctx context.Context, id string) (*store.Port, error) {
	p, err := store.GetPortByUUID(ctx, c.db, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "Port %s could not be found.", id)
	}
	return p, err
}

// PortFilter selects ports for ListPorts.
type PortFilter struct {
	Limit      int
	MarkerUUID string
	NodeIdent  string // UUID or name
	Address    string // any MAC notation
}

// ListPorts returns a page of ports in creation order.
func (c *Conductor) ListPorts(ctx context.Context, f PortFilter) ([]store.Port, error) {
	q := store.PortQuery{Limit: f.Limit}
	if f.Address != "" {
		mac, ok := NormalizeMAC(f.Address)
		if !ok {
			return nil, fault.New(fault.Invalid, "Expected a MAC address but received %q.", f.Address)
		}
		q.Address = mac
	}
	if f.NodeIdent != "" {
		n, err := c.GetNode(ctx, f.NodeIdent)
		if err != nil {
			return nil, err
		}
		q.NodeID = n.ID
	}
	if f.MarkerUUID != "" {
		m, err := store.GetPortByUUID(ctx, c.db, f.MarkerUUID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fault.New(fault.Invalid, "Marker %s could not be found.", f.MarkerUUID)
		}
		if err != nil {
			return nil, err
		}
		q.MarkerID = m.ID
	}
	return store.ListPorts(ctx, c.db, q)
}
