package conductor

import (
	"context"
	"errors"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/inventory"
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

var portPatchRule = patchRule{
	resource: "port",
	patchable: map[string]bool{
		"address": true, "node_uuid": true, "pxe_enabled": true,
		"local_link_connection": true, "physical_network": true, "extra": true,
	},
	required: map[string]bool{"address": true, "node_uuid": true},
}

// CreatePort creates a port on a node. The MAC address is normalised; a MAC
// already used by any port is a conflict. Like every change to a node's
// ports, it is refused while the node's lock is held.
func (c *Conductor) CreatePort(ctx context.Context, spec PortSpec) (*store.Port, error) {
	if spec.Address == "" {
		return nil, fault.New(fault.Invalid, "Mandatory field missing: address.")
	}
	mac, ok := inventory.NormalizeMAC(spec.Address)
	if !ok {
		return nil, fault.New(fault.Invalid, "Expected a MAC address but received %q.", spec.Address)
	}
	if spec.NodeIdent == "" {
		return nil, fault.New(fault.Invalid, "Mandatory field missing: node_uuid.")
	}
	if spec.UUID != "" {
		u, err := canonicalUUID("uuid", spec.UUID)
		if err != nil {
			return nil, err
		}
		spec.UUID = u
	}
	if err := checkPortText(spec.PhysicalNetwork, spec.LocalLinkConnection, spec.Extra); err != nil {
		return nil, err
	}
	p := &store.Port{
		UUID:                spec.UUID,
		Address:             mac,
		PXEEnabled:          spec.PXEEnabled == nil || *spec.PXEEnabled,
		LocalLinkConnection: spec.LocalLinkConnection,
		PhysicalNetwork:     spec.PhysicalNetwork,
		Extra:               spec.Extra,
	}
	err := store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		node, err := c.portNodeForUpdate(ctx, tx, spec.NodeIdent)
		if err != nil {
			return err
		}
		p.NodeID, p.NodeUUID = node.ID, node.UUID
		if err := store.CreatePort(ctx, tx, p); err != nil {
			return portWriteError(err, p, spec.NodeIdent)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return store.GetPortByUUID(ctx, c.db, p.UUID)
}

// portNodeForUpdate locks the row of the node a port belongs (or moves) to
// and checks its lock is free. The node is named in the request body, so an
// unknown one is a client error (400), as in Ironic.
func (c *Conductor) portNodeForUpdate(ctx context.Context, q store.Querier, ident string) (*store.Node, error) {
	if !ValidNodeIdent(ident) {
		return nil, fault.New(fault.Invalid, "Node %s could not be found.", ident)
	}
	n, err := store.GetNodeForUpdate(ctx, q, ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.Invalid, "Node %s could not be found.", ident)
	}
	if err != nil {
		return nil, err
	}
	if holder := n.LockHolder(c.now()); holder != "" {
		return nil, nodeLocked(n.UUID, holder)
	}
	return n, nil
}

func checkPortText(physicalNetwork *string, llc, extra map[string]any) error {
	if err := checkOptText("physical_network", physicalNetwork, maxPhysicalNet); err != nil {
		return err
	}
	if err := checkObject("local_link_connection", llc); err != nil {
		return err
	}
	return checkObject("extra", extra)
}

// portWriteError turns constraint violations of a port write into client
// errors.
func portWriteError(err error, p *store.Port, nodeIdent string) error {
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Constraint {
	case store.PortAddressUnique:
		return fault.Wrap(fault.Conflict, err, "A port with MAC address %s already exists.", p.Address)
	case store.PortUUIDUnique:
		return fault.Wrap(fault.Conflict, err, "A port with UUID %s already exists.", p.UUID)
	case store.PortNodeForeignKey: // the node was deleted meanwhile
		return fault.Wrap(fault.Invalid, err, "Node %s could not be found.", nodeIdent)
	}
	return err
}

// GetPort returns a port by UUID.
func (c *Conductor) GetPort(ctx context.Context, id string) (*store.Port, error) {
	u, ok := parseUUID(id)
	if !ok {
		return nil, fault.New(fault.Invalid, "Expected a port UUID but received %q.", id)
	}
	p, err := store.GetPortByUUID(ctx, c.db, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, portNotFound(id)
	}
	return p, err
}

func portNotFound(id string) error {
	return fault.New(fault.NotFound, "Port %s could not be found.", id)
}

// PortFilter selects ports for ListPorts.
type PortFilter struct {
	Limit      int
	MarkerUUID string
	SortKey    string
	SortDesc   bool
	NodeIdent  string // UUID or name
	Address    string // any MAC notation
}

// ListPorts returns a page of ports.
func (c *Conductor) ListPorts(ctx context.Context, f PortFilter) ([]store.Port, error) {
	if _, ok := store.PortSortKeys[f.SortKey]; f.SortKey != "" && !ok {
		return nil, fault.New(fault.Invalid, "The sort_key value %q is invalid: use one of %s.", f.SortKey, joinKeys(store.PortSortKeys))
	}
	q := store.PortQuery{Limit: f.Limit, SortKey: f.SortKey, SortDesc: f.SortDesc}
	if f.Address != "" {
		mac, ok := inventory.NormalizeMAC(f.Address)
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
		u, ok := parseUUID(f.MarkerUUID)
		if !ok {
			return nil, fault.New(fault.Invalid, "Expected a UUID but received %q.", f.MarkerUUID)
		}
		m, err := store.GetPortByUUID(ctx, c.db, u)
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

// UpdatePort applies an RFC 6902 patch to a port: its address, node,
// pxe_enabled, local_link_connection, physical_network and extra. It is
// refused while the lock of the port's node (or of the node it moves to)
// is held.
func (c *Conductor) UpdatePort(ctx context.Context, id string, ops []PatchOp) (*store.Port, error) {
	parsed, err := parsePatch(ops, portPatchRule)
	if err != nil {
		return nil, err
	}
	u, ok := parseUUID(id)
	if !ok {
		return nil, fault.New(fault.Invalid, "Expected a port UUID but received %q.", id)
	}
	var updated *store.Port
	err = store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		p, err := c.portForUpdate(ctx, tx, u, id)
		if err != nil {
			return err
		}
		doc := map[string]any{
			"address": p.Address, "node_uuid": p.NodeUUID, "pxe_enabled": p.PXEEnabled,
			"local_link_connection": objectOrEmpty(p.LocalLinkConnection),
			"physical_network":      nil, "extra": objectOrEmpty(p.Extra),
		}
		if p.PhysicalNetwork != nil {
			doc["physical_network"] = *p.PhysicalNetwork
		}
		if err := applyPatch(doc, parsed); err != nil {
			return err
		}
		next, err := c.portFromPatchDoc(ctx, tx, p, doc)
		if err != nil {
			return err
		}
		if err := store.UpdatePort(ctx, tx, next); err != nil {
			return portWriteError(err, next, next.NodeUUID)
		}
		updated, err = store.GetPortByUUID(ctx, tx, u)
		return err
	})
	return updated, err
}

// portForUpdate locks a port's node's row, then the port's, and checks the
// node's lock is free. Node before port is the order deleting a node takes
// (its ports go with it), so the two cannot deadlock.
func (c *Conductor) portForUpdate(ctx context.Context, q store.Querier, u, id string) (*store.Port, error) {
	p, err := store.GetPortByUUID(ctx, q, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, portNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	node, err := c.portNodeForUpdate(ctx, q, p.NodeUUID)
	if err != nil {
		return nil, err
	}
	p, err = store.GetPortForUpdate(ctx, q, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, portNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if p.NodeID != node.ID {
		return nil, fault.New(fault.Conflict, "Port %s was moved to another node meanwhile; retry.", id)
	}
	return p, nil
}

func (c *Conductor) portFromPatchDoc(ctx context.Context, q store.Querier, p *store.Port, doc map[string]any) (*store.Port, error) {
	next := *p
	addr, err := docString(doc, "address")
	if err != nil {
		return nil, err
	}
	mac, ok := "", addr != nil
	if ok {
		mac, ok = inventory.NormalizeMAC(*addr)
	}
	if !ok {
		return nil, fault.New(fault.Invalid, "Invalid value for address: expected a MAC address.")
	}
	next.Address = mac
	nodeIdent, err := docString(doc, "node_uuid")
	if err != nil {
		return nil, err
	}
	if nodeIdent == nil {
		return nil, fault.New(fault.Invalid, "Invalid value for node_uuid: a node is required.")
	}
	if *nodeIdent != p.NodeUUID {
		n, err := c.portNodeForUpdate(ctx, q, *nodeIdent)
		if err != nil {
			return nil, err
		}
		next.NodeID, next.NodeUUID = n.ID, n.UUID
	}
	if next.PXEEnabled, err = docBool(doc, "pxe_enabled", true); err != nil {
		return nil, err
	}
	if next.PhysicalNetwork, err = docString(doc, "physical_network"); err != nil {
		return nil, err
	}
	if next.LocalLinkConnection, err = docObject(doc, "local_link_connection"); err != nil {
		return nil, err
	}
	if next.Extra, err = docObject(doc, "extra"); err != nil {
		return nil, err
	}
	if err := checkOptText("physical_network", next.PhysicalNetwork, maxPhysicalNet); err != nil {
		return nil, err
	}
	return &next, nil
}

func objectOrEmpty(o store.JSONObject) map[string]any {
	if o == nil {
		return map[string]any{}
	}
	return o
}

// DeletePort deletes a port, refused while its node's lock is held.
func (c *Conductor) DeletePort(ctx context.Context, id string) error {
	u, ok := parseUUID(id)
	if !ok {
		return fault.New(fault.Invalid, "Expected a port UUID but received %q.", id)
	}
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		p, err := c.portForUpdate(ctx, tx, u, id)
		if err != nil {
			return err
		}
		return store.DeletePort(ctx, tx, p.ID)
	})
}
