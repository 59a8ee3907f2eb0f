package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// ConductorInfo is a row of the conductors table as the operator API shows
// it. The table is written by the conductors themselves (see
// conductor_registry.go); this file only reads it.
type ConductorInfo struct {
	Name           string         `db:"name"`
	Drivers        pq.StringArray `db:"drivers"`
	ConductorGroup string         `db:"conductor_group"`
	StartedAt      time.Time      `db:"started_at"`
	HeartbeatAt    time.Time      `db:"heartbeat_at"`
	// Alive: a heartbeat within the deadline passed to the query, judged by
	// the database clock, which also stamps the heartbeats.
	Alive bool `db:"alive"`
}

// ConductorSortKeys maps the sort keys clients may use to SQL expressions.
var ConductorSortKeys = map[string]string{
	"hostname":        "name",
	"conductor_group": "conductor_group",
	"created_at":      "started_at",
	"updated_at":      "heartbeat_at",
}

// ConductorQuery selects and orders a page of conductors.
type ConductorQuery struct {
	Limit      int
	MarkerName string // return rows after this conductor, in the requested order
	SortKey    string // a key of ConductorSortKeys; default hostname
	SortDesc   bool
	DeadAfter  time.Duration // without a heartbeat for this long, a conductor is not alive
}

func conductorSelect(deadAfter time.Duration) string {
	return fmt.Sprintf(`SELECT name, drivers, conductor_group, started_at, heartbeat_at,
		heartbeat_at > now() - %d * interval '1 millisecond' AS alive FROM conductors`, deadAfter.Milliseconds())
}

// ListConductorInfo returns a page of registered conductors. An unknown
// marker is ErrNotFound.
func ListConductorInfo(ctx context.Context, q Querier, cq ConductorQuery) ([]ConductorInfo, error) {
	sortExpr, dir, cmp, err := sortOrder(ConductorSortKeys, cq.SortKey, "name", cq.SortDesc)
	if err != nil {
		return nil, err
	}
	query := conductorSelect(cq.DeadAfter)
	args := []any{cq.Limit}
	if cq.MarkerName != "" {
		if _, err := GetConductorInfo(ctx, q, cq.MarkerName, cq.DeadAfter); err != nil {
			return nil, err
		}
		args = append(args, cq.MarkerName)
		query += fmt.Sprintf(" WHERE (%s, name) %s (SELECT %s, name FROM conductors WHERE name = $2)", sortExpr, cmp, sortExpr)
	}
	query += fmt.Sprintf(" ORDER BY %s %s, name %s LIMIT $1", sortExpr, dir, dir)
	out := []ConductorInfo{}
	err = q.SelectContext(ctx, &out, query, args...)
	return out, translate(err)
}

// GetConductorInfo returns the registered conductor with the given name.
func GetConductorInfo(ctx context.Context, q Querier, name string, deadAfter time.Duration) (*ConductorInfo, error) {
	var ci ConductorInfo
	if err := q.GetContext(ctx, &ci, conductorSelect(deadAfter)+` WHERE name = $1`, name); err != nil {
		return nil, translate(err)
	}
	return &ci, nil
}

// AliveConductorsByDriver maps each driver to the names of the live
// conductors serving it, sorted.
func AliveConductorsByDriver(ctx context.Context, q Querier, deadAfter time.Duration) (map[string][]string, error) {
	var rows []struct {
		Driver string `db:"driver"`
		Name   string `db:"name"`
	}
	err := q.SelectContext(ctx, &rows, `SELECT d AS driver, name FROM conductors, unnest(drivers) AS d
		WHERE heartbeat_at > now() - $1 * interval '1 millisecond'
		ORDER BY d, name`, deadAfter.Milliseconds())
	if err != nil {
		return nil, translate(err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.Driver] = append(out[r.Driver], r.Name)
	}
	return out, nil
}
