package conductor

import (
	"context"
	"errors"
	"regexp"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// NodeSpec is what an operator supplies to enroll a node.
type NodeSpec struct {
	UUID           string // optional; generated when empty
	Name           *string
	Driver         string
	DriverInfo     map[string]any
	Properties     map[string]any
	InstanceInfo   map[string]any
	Extra          map[string]any
	ResourceClass  *string
	ConductorGroup string
	Owner          *string
	Lessee         *string
	Description    *string
	// InitialState is StateEnroll, or StateAvailable for clients older than
	// API 1.11.
	InitialState string
}

// Names follow Ironic: RFC 3986 unreserved characters, never UUID-shaped.
var nodeNamePattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)

func validateNodeName(name string) error {
	if !nodeNamePattern.MatchString(name) {
		return fault.New(fault.Invalid, "Expected a logical name but received %q: names use letters, digits, '-', '.', '_' and '~', at most 255.", name)
	}
	if _, err := uuid.Parse(name); err == nil {
		return fault.New(fault.Invalid, "Expected a logical name but received %q, which is a UUID.", name)
	}
	return nil
}

// CreateNode enrolls a node.
func (c *Conductor) CreateNode(ctx context.Context, spec NodeSpec) (*store.Node, error) {
	if spec.Driver == "" {
		return nil, fault.New(fault.Invalid, "Mandatory field missing: driver.")
	}
	if _, ok := c.drivers.Get(spec.Driver); !ok {
		return nil, fault.New(fault.Invalid, "No valid host was found. Reason: No conductor service registered which supports driver %s.", spec.Driver)
	}
	if spec.UUID != "" {
		u, err := uuid.Parse(spec.UUID)
		if err != nil {
			return nil, fault.New(fault.Invalid, "Expected a UUID but received %q.", spec.UUID)
		}
		spec.UUID = u.String()
	}
	if spec.Name != nil {
		if err := validateNodeName(*spec.Name); err != nil {
			return nil, err
		}
	}
	if spec.InitialState != StateAvailable {
		spec.InitialState = StateEnroll
	}
	n := &store.Node{
		UUID:           spec.UUID,
		Name:           spec.Name,
		Driver:         spec.Driver,
		DriverInfo:     spec.DriverInfo,
		Properties:     spec.Properties,
		InstanceInfo:   spec.InstanceInfo,
		Extra:          spec.Extra,
		ProvisionState: spec.InitialState,
		ResourceClass:  spec.ResourceClass,
		ConductorGroup: spec.ConductorGroup,
		Owner:          spec.Owner,
		Lessee:         spec.Lessee,
		Description:    spec.Description,
	}
	if err := store.CreateNode(ctx, c.db, n); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			switch ce.Constraint {
			case store.NodeNameUnique:
				return nil, fault.Wrap(fault.Conflict, err, "A node with name %s already exists.", *spec.Name)
			case store.NodeUUIDUnique:
				return nil, fault.Wrap(fault.Conflict, err, "A node with UUID %s already exists.", n.UUID)
			}
		}
		return nil, err
	}
	return store.GetNodeByID(ctx, c.db, n.ID)
}

// GetNode returns the node named by ident (UUID or name).
func (c *Conductor) GetNode(ctx context.Context, ident string) (*store.Node, error) {
	n, err := store.GetNode(ctx, c.db, ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nodeNotFound(ident)
	}
	return n, err
}

func nodeNotFound(ident string) error {
	return fault.New(fault.NotFound, "Node %s could not be found.", ident)
}

// ListNodes returns a page of nodes; an unknown marker is a client error.
func (c *Conductor) ListNodes(ctx context.Context, q store.NodeQuery) ([]store.Node, error) {
	if _, ok := store.NodeSortKeys[q.SortKey]; q.SortKey != "" && !ok {
		return nil, fault.New(fault.Invalid, "The sort_key value %q is invalid.", q.SortKey)
	}
	nodes, err := store.ListNodes(ctx, c.db, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.Invalid, "Marker %s could not be found.", q.MarkerUUID)
	}
	return nodes, err
}

// DeleteNode deletes a node and its ports. Only nodes at rest (enroll,
// manageable, available, adopt failed) or in maintenance may be deleted, and
// never one with an instance.
func (c *Conductor) DeleteNode(ctx context.Context, ident string) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := store.GetNode(ctx, tx, ident)
		if errors.Is(err, store.ErrNotFound) {
			return nodeNotFound(ident)
		}
		if err != nil {
			return err
		}
		if n.InstanceUUID != nil {
			return fault.New(fault.Conflict, "Node %s is associated with instance %s.", n.UUID, *n.InstanceUUID)
		}
		if !n.Maintenance && !deletableStates[n.ProvisionState] {
			return fault.New(fault.Conflict, "Can not delete node %s while it is in provision state %q. Valid provision states to start deletion are enroll, manageable, available and adopt failed, or set maintenance first.", n.UUID, n.ProvisionState)
		}
		return store.DeleteNode(ctx, tx, n.ID)
	})
}
