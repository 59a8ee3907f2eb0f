package conductor

import (
	"context"
	"errors"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// ChassisSpec is what an operator supplies to create a chassis.
type ChassisSpec struct {
	UUID        string // optional; generated when empty
	Description *string
	Extra       map[string]any
}

var chassisPatchRule = patchRule{
	resource:  "chassis",
	patchable: map[string]bool{"description": true, "extra": true},
}

// CreateChassis creates a chassis.
func (c *Conductor) CreateChassis(ctx context.Context, spec ChassisSpec) (*store.Chassis, error) {
	if spec.UUID != "" {
		u, err := canonicalUUID("uuid", spec.UUID)
		if err != nil {
			return nil, err
		}
		spec.UUID = u
	}
	if err := checkOptText("description", spec.Description, maxChassisDesc); err != nil {
		return nil, err
	}
	if err := checkObject("extra", spec.Extra); err != nil {
		return nil, err
	}
	ch := &store.Chassis{UUID: spec.UUID, Description: spec.Description, Extra: spec.Extra}
	if err := store.CreateChassis(ctx, c.db, ch); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Constraint == store.ChassisUUIDUnique {
			return nil, fault.Wrap(fault.Conflict, err, "A chassis with UUID %s already exists.", ch.UUID)
		}
		return nil, err
	}
	return store.GetChassisByUUID(ctx, c.db, ch.UUID)
}

// GetChassis returns a chassis by UUID (chassis have no names).
func (c *Conductor) GetChassis(ctx context.Context, id string) (*store.Chassis, error) {
	u, ok := parseUUID(id)
	if !ok {
		return nil, fault.New(fault.Invalid, "Expected a chassis UUID but received %q.", id)
	}
	ch, err := store.GetChassisByUUID(ctx, c.db, u)
	if errors.Is(err, store.ErrNotFound) {
		return nil, chassisNotFound(id)
	}
	return ch, err
}

func chassisNotFound(id string) error {
	return fault.New(fault.NotFound, "Chassis %s could not be found.", id)
}

// ChassisFilter pages through chassis.
type ChassisFilter struct {
	Limit      int
	MarkerUUID string
	SortKey    string
	SortDesc   bool
}

// ListChassis returns a page of chassis.
func (c *Conductor) ListChassis(ctx context.Context, f ChassisFilter) ([]store.Chassis, error) {
	if _, ok := store.ChassisSortKeys[f.SortKey]; f.SortKey != "" && !ok {
		return nil, fault.New(fault.Invalid, "The sort_key value %q is invalid: use one of %s.", f.SortKey, joinKeys(store.ChassisSortKeys))
	}
	q := store.ChassisQuery{Limit: f.Limit, SortKey: f.SortKey, SortDesc: f.SortDesc}
	if f.MarkerUUID != "" {
		u, ok := parseUUID(f.MarkerUUID)
		if !ok {
			return nil, fault.New(fault.Invalid, "Expected a UUID but received %q.", f.MarkerUUID)
		}
		m, err := store.GetChassisByUUID(ctx, c.db, u)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fault.New(fault.Invalid, "Marker %s could not be found.", f.MarkerUUID)
		}
		if err != nil {
			return nil, err
		}
		q.MarkerID = m.ID
	}
	return store.ListChassis(ctx, c.db, q)
}

// UpdateChassis applies an RFC 6902 patch to a chassis' description and
// extra, in one transaction holding the chassis' row lock.
func (c *Conductor) UpdateChassis(ctx context.Context, id string, ops []PatchOp) (*store.Chassis, error) {
	parsed, err := parsePatch(ops, chassisPatchRule)
	if err != nil {
		return nil, err
	}
	u, ok := parseUUID(id)
	if !ok {
		return nil, fault.New(fault.Invalid, "Expected a chassis UUID but received %q.", id)
	}
	var updated *store.Chassis
	err = store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		ch, err := store.GetChassisForUpdate(ctx, tx, u)
		if errors.Is(err, store.ErrNotFound) {
			return chassisNotFound(id)
		}
		if err != nil {
			return err
		}
		doc := map[string]any{"extra": map[string]any(ch.Extra)}
		if ch.Extra == nil {
			doc["extra"] = map[string]any{}
		}
		doc["description"] = nil
		if ch.Description != nil {
			doc["description"] = *ch.Description
		}
		if err := applyPatch(doc, parsed); err != nil {
			return err
		}
		next := *ch
		if next.Description, err = docString(doc, "description"); err != nil {
			return err
		}
		if err := checkOptText("description", next.Description, maxChassisDesc); err != nil {
			return err
		}
		if next.Extra, err = docObject(doc, "extra"); err != nil {
			return err
		}
		if err := store.UpdateChassis(ctx, tx, &next); err != nil {
			return err
		}
		updated, err = store.GetChassisByUUID(ctx, tx, u)
		return err
	})
	return updated, err
}

// DeleteChassis deletes an empty chassis. One that still holds nodes is
// refused with Ironic's answer (400).
func (c *Conductor) DeleteChassis(ctx context.Context, id string) error {
	u, ok := parseUUID(id)
	if !ok {
		return fault.New(fault.Invalid, "Expected a chassis UUID but received %q.", id)
	}
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		ch, err := store.GetChassisForUpdate(ctx, tx, u)
		if errors.Is(err, store.ErrNotFound) {
			return chassisNotFound(id)
		}
		if err != nil {
			return err
		}
		notEmpty := fault.New(fault.Invalid, "Cannot complete the requested action because chassis %s contains nodes.", ch.UUID)
		has, err := store.ChassisHasNodes(ctx, tx, ch.ID)
		if err != nil {
			return err
		}
		if has {
			return notEmpty
		}
		err = store.DeleteChassis(ctx, tx, ch.ID)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Constraint == store.NodeChassisForeignKey { // a node joined meanwhile
			return notEmpty
		}
		return err
	})
}
