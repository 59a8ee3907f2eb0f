package conductor

import (
	"context"
	"errors"
	"regexp"
	"strings"

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
	ChassisUUID    *string
	InstanceUUID   *string
	// Interfaces maps hardware interfaces (HardwareInterfaces) to the
	// implementations asked for; those absent or nil get the driver's
	// default.
	Interfaces     map[string]*string
	AutomatedClean *bool // nil: the conductor's setting
	Retired        *bool
	RetiredReason  *string
	NetworkData    map[string]any
	ConsoleEnabled *bool
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
	if IsUUID(name) {
		return fault.New(fault.Invalid, "Expected a logical name but received %q, which is a UUID.", name)
	}
	return nil
}

// CreateNode enrolls a node.
func (c *Conductor) CreateNode(ctx context.Context, spec NodeSpec) (*store.Node, error) {
	if spec.Driver == "" {
		return nil, fault.New(fault.Invalid, "Mandatory field missing: driver.")
	}
	interfaces, err := c.resolveInterfaces(spec.Driver, spec.Interfaces)
	if err != nil {
		return nil, err
	}
	if spec.UUID != "" {
		u, err := canonicalUUID("uuid", spec.UUID)
		if err != nil {
			return nil, err
		}
		spec.UUID = u
	}
	if spec.Name != nil {
		if err := validateNodeName(*spec.Name); err != nil {
			return nil, err
		}
	}
	if spec.InstanceUUID != nil {
		u, err := canonicalUUID("instance_uuid", *spec.InstanceUUID)
		if err != nil {
			return nil, err
		}
		spec.InstanceUUID = &u
	}
	if err := checkNodeSpecText(&spec); err != nil {
		return nil, err
	}
	if err := checkNetworkData(spec.NetworkData); err != nil {
		return nil, err
	}
	if spec.InitialState != StateAvailable {
		spec.InitialState = StateEnroll
	}
	chassisID, _, err := c.resolveChassis(ctx, c.db, spec.ChassisUUID)
	if err != nil {
		return nil, err
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
		ChassisID:      chassisID,
		ChassisUUID:    spec.ChassisUUID,
		InstanceUUID:   spec.InstanceUUID,
		Interfaces:     interfaces,
		AutomatedClean: spec.AutomatedClean,
		Retired:        spec.Retired != nil && *spec.Retired,
		RetiredReason:  spec.RetiredReason,
		NetworkData:    spec.NetworkData,
		ConsoleEnabled: spec.ConsoleEnabled != nil && *spec.ConsoleEnabled,
	}
	if err := store.CreateNode(ctx, c.db, n); err != nil {
		return nil, nodeWriteError(err, n)
	}
	return c.withInterfaces(store.GetNodeByID(ctx, c.db, n.ID))
}

// withInterfaces fills in the interfaces of a node read (fillInterfaces).
func (c *Conductor) withInterfaces(n *store.Node, err error) (*store.Node, error) {
	if err != nil {
		return nil, err
	}
	c.fillInterfaces(n)
	return n, nil
}

// checkNodeSpecText checks the free-text and JSON fields of a new node and
// normalises its conductor group.
func checkNodeSpecText(spec *NodeSpec) error {
	for _, f := range []struct {
		name string
		s    *string
		max  int
	}{
		{"resource_class", spec.ResourceClass, maxResourceClass},
		{"owner", spec.Owner, maxOwner},
		{"lessee", spec.Lessee, maxOwner},
		{"description", spec.Description, maxDescription},
		{"retired_reason", spec.RetiredReason, maxReason},
	} {
		if err := checkOptText(f.name, f.s, f.max); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		m    map[string]any
	}{
		{"driver_info", spec.DriverInfo}, {"properties", spec.Properties},
		{"instance_info", spec.InstanceInfo}, {"extra", spec.Extra},
		{"network_data", spec.NetworkData},
	} {
		if err := checkObject(f.name, f.m); err != nil {
			return err
		}
	}
	group, err := normalizeConductorGroup(spec.ConductorGroup)
	spec.ConductorGroup = group
	return err
}

// GetNode returns the node named by ident (UUID or name).
func (c *Conductor) GetNode(ctx context.Context, ident string) (*store.Node, error) {
	if !ValidNodeIdent(ident) {
		return nil, nodeNotFound(ident) // no node can have this name
	}
	n, err := store.GetNode(ctx, c.db, ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nodeNotFound(ident)
	}
	return c.withInterfaces(n, err)
}

// ValidNodeIdent reports whether ident can name a node: a UUID or a valid
// node name.
func ValidNodeIdent(ident string) bool {
	return IsUUID(ident) || validateNodeName(ident) == nil
}

func nodeNotFound(ident string) error {
	return fault.New(fault.NotFound, "Node %s could not be found.", ident)
}

// ListNodes returns a page of nodes. Filters are checked first: an unknown
// provision state, sort key or marker, or a malformed UUID, is a client
// error rather than an empty page.
func (c *Conductor) ListNodes(ctx context.Context, q store.NodeQuery) ([]store.Node, error) {
	if _, ok := store.NodeSortKeys[q.SortKey]; q.SortKey != "" && !ok {
		return nil, fault.New(fault.Invalid, "The sort_key value %q is invalid: use one of %s.", q.SortKey, joinKeys(store.NodeSortKeys))
	}
	if q.ProvisionState != "" && !AllStates[q.ProvisionState] {
		return nil, fault.New(fault.Invalid, "Invalid provision_state filter %q: not a provision state.", q.ProvisionState)
	}
	if q.Fault != "" && !contains(validFaults, q.Fault) {
		return nil, fault.New(fault.Invalid, "Unrecognized fault \"%s\" is specified, allowed faults are %s", q.Fault, pyTuple(validFaults))
	}
	if err := checkUUIDFilters(&q.MarkerUUID, &q.InstanceUUID, &q.ChassisUUID); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{
		{"driver", q.Driver}, {"resource_class", q.ResourceClass}, {"conductor_group", q.ConductorGroup},
		{"fault", q.Fault}, {"owner", q.Owner}, {"lessee", q.Lessee}, {"description_contains", q.DescriptionContains},
	} {
		if err := checkText(f.name, f.v, maxDescription); err != nil {
			return nil, err
		}
	}
	q.ConductorGroup = strings.ToLower(q.ConductorGroup)
	if q.Limit <= 0 || q.Limit > maxPage {
		q.Limit = maxPage
	}
	nodes, err := store.ListNodes(ctx, c.db, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.Invalid, "Marker %s could not be found.", q.MarkerUUID)
	}
	if q.Shape == store.NodeFull {
		for i := range nodes {
			c.fillInterfaces(&nodes[i])
		}
	}
	return nodes, err
}

// validFaults are the faults a node can have, Ironic's.
var validFaults = []string{"power failure", "clean failure", "rescue abort failure"}

// pyTuple writes names as Python prints a tuple, as Ironic's messages do.
func pyTuple(names []string) string {
	l := pyList(names)
	return "(" + l[1:len(l)-1] + ")"
}

// ListChassisNodes returns a page of the nodes in a chassis; an unknown
// chassis is not found.
func (c *Conductor) ListChassisNodes(ctx context.Context, chassisUUID string, q store.NodeQuery) ([]store.Node, error) {
	ch, err := c.GetChassis(ctx, chassisUUID)
	if err != nil {
		return nil, err
	}
	q.ChassisUUID = ch.UUID
	return c.ListNodes(ctx, q)
}

// checkUUIDFilters checks and canonicalises the non-empty UUID parameters of
// a listing.
func checkUUIDFilters(ids ...*string) error {
	for _, id := range ids {
		if *id == "" {
			continue
		}
		u, ok := parseUUID(*id)
		if !ok {
			return fault.New(fault.Invalid, "Expected a UUID but received %q.", *id)
		}
		*id = u
	}
	return nil
}

// parseUUID returns s as a canonical UUID, or false when it is not one.
func parseUUID(s string) (string, bool) {
	if !IsUUID(s) {
		return "", false
	}
	u, _ := canonicalUUID("", s)
	return u, true
}

// DeleteNode deletes a node and its ports. Only nodes at rest (enroll,
// manageable, available, adopt failed) or in maintenance may be deleted,
// never one with an instance, and never while its lock is held.
func (c *Conductor) DeleteNode(ctx context.Context, ident string) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		if n.InstanceUUID != nil {
			return fault.New(fault.Conflict, "Node %s is associated with instance %s.", n.UUID, *n.InstanceUUID)
		}
		if n.Protected {
			return nodeProtected(n.UUID)
		}
		if !n.Maintenance && !deletableStates[n.ProvisionState] {
			return fault.New(fault.Conflict, "Can not delete node %s while it is in provision state %q. Valid provision states to start deletion are enroll, manageable, available and adopt failed, or set maintenance first.", n.UUID, n.ProvisionState)
		}
		return store.DeleteNode(ctx, tx, n.ID)
	})
}

// nodeProtected refuses what a protected node may not undergo, as Ironic.
func nodeProtected(uuid string) error {
	return fault.New(fault.Forbidden, "Node %s is protected and cannot be undeployed, rebuilt or deleted", uuid)
}

// cleansAutomatically reports whether the cleaning after provide and
// undeploy does the agent's work on n: the node's automated_clean when set,
// else the conductor's setting (Ironic's [conductor]automated_clean).
func (c *Conductor) cleansAutomatically(n *store.Node) bool {
	if n.AutomatedClean != nil {
		return *n.AutomatedClean
	}
	return !c.opts.SkipAutomatedClean
}
