package conductor

import (
	"context"
	"errors"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// nodePatchRule lists the node fields operators may patch: Ironic's
// PATCH_ALLOWED_FIELDS that Ferric has. State, power, lock and
// driver_internal_info belong to the conductor.
var nodePatchRule = func() patchRule {
	r := patchRule{
		resource: "node",
		patchable: map[string]bool{
			"name": true, "driver": true, "driver_info": true, "properties": true,
			"instance_info": true, "extra": true, "instance_uuid": true, "maintenance": true,
			"maintenance_reason": true, "resource_class": true, "conductor_group": true,
			"owner": true, "lessee": true, "description": true, "chassis_uuid": true,
			"automated_clean": true, "protected": true, "protected_reason": true,
			"retired": true, "retired_reason": true, "network_data": true,
		},
		required: map[string]bool{"driver": true},
	}
	for _, iface := range HardwareInterfaces {
		r.patchable[iface+"_interface"] = true
	}
	return r
}()

// NodeUpdate are the options of a node patch.
type NodeUpdate struct {
	// ResetInterfaces, with a new driver, resets the interfaces the patch
	// does not set to the new driver's defaults (Ironic's
	// reset_interfaces); without it they must suit the new driver.
	ResetInterfaces bool
	User            string // for the node's history
}

// updateAllowedStates are the states in which a node with a target (work
// under way or failed) may still be edited: the failed ones, where an
// operator must fix the node before retrying.
var updateAllowedStates = map[string]bool{
	StateDeployFailed: true, StateCleanFailed: true, StateInspectFailed: true,
	StateAdoptFailed: true, StateError: true,
}

// PatchRoot returns the top-level member an operation's path names, for
// callers that gate members by API version; "" when the path is malformed
// (UpdateNode then refuses it with a precise message).
func PatchRoot(op PatchOp) string {
	segs, err := parsePointer(op.Path)
	if err != nil {
		return ""
	}
	return segs[0]
}

// UpdateNode applies an RFC 6902 patch to the node's stored (unmasked)
// editable fields and returns the node as written. The read, the patch and
// the write happen in one transaction holding the node's row lock, so
// concurrent patches never lose each other's changes.
//
// It refuses (409) a node whose lock is held, and one with work under way
// (target_provision_state set) unless the node is in maintenance or in a
// failed state; patches touching only maintenance and maintenance_reason
// are always allowed, as the maintenance endpoint is. A patch that breaks a
// rule changes nothing.
func (c *Conductor) UpdateNode(ctx context.Context, ident string, ops []PatchOp, opts NodeUpdate) (*store.Node, error) {
	if !ValidNodeIdent(ident) {
		return nil, nodeNotFound(ident)
	}
	for _, op := range ops {
		if PatchRoot(op) == "traits" {
			return nil, fault.New(fault.Invalid, "Cannot update node traits via node patch. Node traits should be updated via the node traits API.")
		}
	}
	parsed, err := parsePatch(ops, nodePatchRule)
	if err != nil {
		return nil, err
	}
	if opts.ResetInterfaces && !touches(parsed, "driver") {
		return nil, fault.New(fault.Invalid, "The reset_interfaces parameter can only be used when changing the node's driver.")
	}
	var updated *store.Node
	err = store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		if n.TargetProvisionState != nil && !updateAllowedStates[n.ProvisionState] && !onlyMaintenance(parsed) {
			return fault.New(fault.Conflict, "Node %s can not be updated while a state transition is in progress (provision state %q, target %q).",
				n.UUID, n.ProvisionState, *n.TargetProvisionState)
		}
		doc := nodePatchDoc(n)
		if err := applyPatch(doc, parsed); err != nil {
			return err
		}
		next, err := c.nodeFromPatchDoc(ctx, tx, n, doc)
		if err != nil {
			return err
		}
		if err := c.patchedInterfaces(next, n, doc, opts.ResetInterfaces); err != nil {
			return err
		}
		if err := checkProtectedAndRetired(next, n); err != nil {
			return err
		}
		if err := store.UpdateNode(ctx, tx, next); err != nil {
			return nodeWriteError(err, next)
		}
		if next.Maintenance != n.Maintenance {
			c.recordMaintenance(ctx, tx, next, opts.User)
		}
		updated, err = c.withInterfaces(store.GetNodeByID(ctx, tx, n.ID))
		return err
	})
	return updated, err
}

// touches reports whether a patch changes the top-level member root.
func touches(ops []parsedOp, root string) bool {
	for _, op := range ops {
		if op.segs[0] == root {
			return true
		}
	}
	return false
}

// patchedInterfaces reads the *_interface members into next.Interfaces and
// checks them against next's driver, as Ironic does: they change only in
// enroll, inspecting, inspect wait, manageable or available, or in
// maintenance (409); a removed one gets the driver's default; with a new
// driver, the others must suit it unless reset is set, which gives them
// the new driver's defaults.
func (c *Conductor) patchedInterfaces(next, old *store.Node, doc map[string]any, reset bool) error {
	driverChanged := next.Driver != old.Driver
	requested := map[string]*string{}
	changed := false
	for _, iface := range HardwareInterfaces {
		field := iface + "_interface"
		impl, err := docString(doc, field)
		if err != nil {
			return err
		}
		before, _ := old.Interfaces[iface].(string)
		explicit := (impl == nil) != (before == "") || impl != nil && *impl != before
		if explicit && !contains(interfaceUpdateStates, old.ProvisionState) && !old.Maintenance {
			return fault.New(fault.Conflict, "Node %s can not have %s updated unless it is in one of allowed (%s) states or in maintenance mode.",
				old.UUID, field, strings.Join(interfaceUpdateStates, ", "))
		}
		changed = changed || explicit
		if explicit || !(driverChanged && reset) {
			requested[iface] = impl
		}
	}
	if !changed && !driverChanged {
		next.Interfaces = old.Interfaces
		return nil
	}
	ifaces, err := c.resolveInterfaces(next.Driver, requested)
	if err != nil {
		return err
	}
	next.Interfaces = ifaces
	return nil
}

// checkProtectedAndRetired applies Ironic's rules to protected and retired:
// a node is made protected only when active (Ironic: or in rescue, a
// state Ferric does not have; 409) and retired
// anywhere but available (409); unsetting either clears its reason; a
// reason needs its flag (400).
func checkProtectedAndRetired(next, old *store.Node) error {
	if next.Protected != old.Protected {
		if !next.Protected {
			next.ProtectedReason = nil
		} else if next.ProvisionState != StateActive {
			return fault.New(fault.Conflict, "Node %s can only be made protected in provision states 'active' or 'rescue', the current state is '%s'",
				next.UUID, next.ProvisionState)
		}
	}
	if next.ProtectedReason != nil && !next.Protected && !sameString(next.ProtectedReason, old.ProtectedReason) {
		return fault.New(fault.Invalid, "The protected_reason field can only be set when protected is True")
	}
	if next.Retired != old.Retired {
		if !next.Retired {
			next.RetiredReason = nil
		} else if next.ProvisionState == StateAvailable {
			return fault.New(fault.Conflict, "Node %s can not have 'retired' set in provision state 'available', the current state is '%s'",
				next.UUID, next.ProvisionState)
		}
	}
	if next.RetiredReason != nil && !next.Retired && !sameString(next.RetiredReason, old.RetiredReason) {
		return fault.New(fault.Invalid, "The retired_reason field can only be set when retired is True")
	}
	return nil
}

func sameString(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func onlyMaintenance(ops []parsedOp) bool {
	for _, op := range ops {
		if op.segs[0] != "maintenance" && op.segs[0] != "maintenance_reason" {
			return false
		}
	}
	return true
}

// nodePatchDoc is the patchable part of a node as a JSON document, every
// member present (null when unset).
func nodePatchDoc(n *store.Node) map[string]any {
	opt := func(s *string) any {
		if s == nil {
			return nil
		}
		return *s
	}
	obj := func(o store.JSONObject) any {
		if o == nil {
			return map[string]any{}
		}
		return map[string]any(o)
	}
	doc := map[string]any{
		"name":               opt(n.Name),
		"driver":             n.Driver,
		"driver_info":        obj(n.DriverInfo),
		"properties":         obj(n.Properties),
		"instance_info":      obj(n.InstanceInfo),
		"extra":              obj(n.Extra),
		"instance_uuid":      opt(n.InstanceUUID),
		"maintenance":        n.Maintenance,
		"maintenance_reason": opt(n.MaintenanceReason),
		"resource_class":     opt(n.ResourceClass),
		"conductor_group":    n.ConductorGroup,
		"owner":              opt(n.Owner),
		"lessee":             opt(n.Lessee),
		"description":        opt(n.Description),
		"chassis_uuid":       opt(n.ChassisUUID),
		"automated_clean":    optBool(n.AutomatedClean),
		"protected":          n.Protected,
		"protected_reason":   opt(n.ProtectedReason),
		"retired":            n.Retired,
		"retired_reason":     opt(n.RetiredReason),
		"network_data":       obj(n.NetworkData),
	}
	for _, iface := range HardwareInterfaces {
		doc[iface+"_interface"] = nil
		if s, ok := n.Interfaces[iface].(string); ok {
			doc[iface+"_interface"] = s
		}
	}
	return doc
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

// nodeFromPatchDoc checks the patched document and returns a copy of n
// carrying it. Removed members take their defaults.
func (c *Conductor) nodeFromPatchDoc(ctx context.Context, q store.Querier, n *store.Node, doc map[string]any) (*store.Node, error) {
	next := *n
	var err error
	if next.Name, err = docString(doc, "name"); err != nil {
		return nil, err
	}
	if next.Name != nil {
		if err := validateNodeName(*next.Name); err != nil {
			return nil, err
		}
	}
	driver, err := docString(doc, "driver")
	if err != nil {
		return nil, err
	}
	if driver == nil {
		return nil, fault.New(fault.Invalid, "Invalid value for driver: a driver name is required.")
	}
	if *driver != n.Driver {
		if _, ok := c.drivers.Get(*driver); !ok {
			return nil, fault.New(fault.Invalid, "No valid host was found. Reason: No conductor service registered which supports driver %s.", *driver)
		}
	}
	next.Driver = *driver
	for _, f := range []struct {
		key string
		dst *store.JSONObject
	}{
		{"driver_info", &next.DriverInfo}, {"properties", &next.Properties},
		{"instance_info", &next.InstanceInfo}, {"extra", &next.Extra},
	} {
		m, err := docObject(doc, f.key)
		if err != nil {
			return nil, err
		}
		*f.dst = m
	}
	if err := c.patchedInstanceUUID(&next, n, doc); err != nil {
		return nil, err
	}
	if err := patchedMaintenance(&next, n, doc); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst **string
		max int
	}{
		{"resource_class", &next.ResourceClass, maxResourceClass},
		{"owner", &next.Owner, maxOwner},
		{"lessee", &next.Lessee, maxOwner},
		{"description", &next.Description, maxDescription},
	} {
		s, err := docString(doc, f.key)
		if err != nil {
			return nil, err
		}
		if err := checkOptText(f.key, s, f.max); err != nil {
			return nil, err
		}
		*f.dst = s
	}
	group, err := docString(doc, "conductor_group")
	if err != nil {
		return nil, err
	}
	next.ConductorGroup = ""
	if group != nil {
		if next.ConductorGroup, err = normalizeConductorGroup(*group); err != nil {
			return nil, err
		}
	}
	if next.AutomatedClean, err = docOptBool(doc, "automated_clean"); err != nil {
		return nil, err
	}
	if next.Protected, err = docBool(doc, "protected", false); err != nil {
		return nil, err
	}
	if next.Retired, err = docBool(doc, "retired", false); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst **string
	}{{"protected_reason", &next.ProtectedReason}, {"retired_reason", &next.RetiredReason}} {
		s, err := docString(doc, f.key)
		if err != nil {
			return nil, err
		}
		if err := checkOptText(f.key, s, maxReason); err != nil {
			return nil, err
		}
		*f.dst = s
	}
	if next.NetworkData, err = docObject(doc, "network_data"); err != nil {
		return nil, err
	}
	if err := checkNetworkData(next.NetworkData); err != nil {
		return nil, err
	}
	chassisUUID, err := docString(doc, "chassis_uuid")
	if err != nil {
		return nil, err
	}
	if next.ChassisID, next.ChassisUUID, err = c.resolveChassis(ctx, q, chassisUUID); err != nil {
		return nil, err
	}
	return &next, nil
}

// patchedInstanceUUID reads instance_uuid. As in Ironic, a node associated
// with one instance cannot be re-associated with another in one step.
func (c *Conductor) patchedInstanceUUID(next, old *store.Node, doc map[string]any) error {
	s, err := docString(doc, "instance_uuid")
	if err != nil {
		return err
	}
	if s != nil {
		u, err := canonicalUUID("instance_uuid", *s)
		if err != nil {
			return err
		}
		s = &u
	}
	if s != nil && old.InstanceUUID != nil && *s != *old.InstanceUUID {
		return fault.New(fault.Conflict, "Node %s is associated with instance %s.", old.UUID, *old.InstanceUUID)
	}
	next.InstanceUUID = s
	return nil
}

// patchedMaintenance reads maintenance and its reason. Leaving maintenance
// clears the reason and the fault, as in Ironic; a reason needs maintenance.
func patchedMaintenance(next, old *store.Node, doc map[string]any) error {
	var err error
	if next.Maintenance, err = docBool(doc, "maintenance", false); err != nil {
		return err
	}
	reason, err := docString(doc, "maintenance_reason")
	if err != nil {
		return err
	}
	if err := checkOptText("maintenance_reason", reason, maxReason); err != nil {
		return err
	}
	next.MaintenanceReason = reason
	if !next.Maintenance {
		if reason != nil && (old.MaintenanceReason == nil || *reason != *old.MaintenanceReason) {
			return fault.New(fault.Invalid, "maintenance_reason can only be set on a node in maintenance.")
		}
		next.MaintenanceReason, next.Fault = nil, nil
	}
	return nil
}

// resolveChassis maps an optional chassis UUID to its id; an unknown one is
// a client error (400: the chassis is a field of the request, not the URL).
func (c *Conductor) resolveChassis(ctx context.Context, q store.Querier, chassisUUID *string) (*int64, *string, error) {
	if chassisUUID == nil {
		return nil, nil, nil
	}
	u, err := canonicalUUID("chassis_uuid", *chassisUUID)
	if err != nil {
		return nil, nil, err
	}
	ch, err := store.GetChassisByUUID(ctx, q, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fault.New(fault.Invalid, "Chassis %s could not be found.", u)
	}
	if err != nil {
		return nil, nil, err
	}
	return &ch.ID, &ch.UUID, nil
}

// nodeWriteError turns constraint violations of a node write into client
// errors.
func nodeWriteError(err error, n *store.Node) error {
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Constraint {
	case store.NodeNameUnique:
		return fault.Wrap(fault.Conflict, err, "A node with name %s already exists.", *n.Name)
	case store.NodeUUIDUnique:
		return fault.Wrap(fault.Conflict, err, "A node with UUID %s already exists.", n.UUID)
	case store.NodeInstanceUUIDUnique:
		return fault.Wrap(fault.Conflict, err, "Instance %s is already associated with a node.", *n.InstanceUUID)
	case store.NodeChassisForeignKey: // the chassis was deleted meanwhile
		return fault.Wrap(fault.Invalid, err, "Chassis %s could not be found.", *n.ChassisUUID)
	}
	return err
}
