package conductor

import (
	"context"
	"errors"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// ConductorFilter pages through the registered conductors.
type ConductorFilter struct {
	Limit      int
	MarkerName string
	SortKey    string // hostname (default), conductor_group, created_at, updated_at
	SortDesc   bool
}

// ListConductorInfo returns a page of the registered conductors, each
// marked alive when it heartbeat within the last 60 s.
func (c *Conductor) ListConductorInfo(ctx context.Context, f ConductorFilter) ([]store.ConductorInfo, error) {
	if _, ok := store.ConductorSortKeys[f.SortKey]; f.SortKey != "" && !ok {
		return nil, fault.New(fault.Invalid, "The sort_key value %q is invalid: use one of %s.", f.SortKey, joinKeys(store.ConductorSortKeys))
	}
	if err := checkText("marker", f.MarkerName, maxOwner); err != nil {
		return nil, err
	}
	out, err := store.ListConductorInfo(ctx, c.db, store.ConductorQuery{
		Limit: f.Limit, MarkerName: f.MarkerName, SortKey: f.SortKey, SortDesc: f.SortDesc,
		DeadAfter: conductorDeadAfter,
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.Invalid, "Marker %s could not be found.", f.MarkerName)
	}
	return out, err
}

// GetConductorInfo returns one registered conductor by host name.
func (c *Conductor) GetConductorInfo(ctx context.Context, name string) (*store.ConductorInfo, error) {
	notFound := fault.New(fault.NotFound, "Conductor %s could not be found.", name)
	if checkText("hostname", name, maxOwner) != nil {
		return nil, notFound
	}
	ci, err := store.GetConductorInfo(ctx, c.db, name, conductorDeadAfter)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	return ci, err
}
