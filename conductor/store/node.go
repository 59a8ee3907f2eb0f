package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Node is a row of the nodes table.
type Node struct {
	ID                   int64      `db:"id"`
	UUID                 string     `db:"uuid"`
	Name                 *string    `db:"name"`
	Driver               string     `db:"driver"`
	DriverInfo           JSONObject `db:"driver_info"`
	DriverInternalInfo   JSONObject `db:"driver_internal_info"`
	Properties           JSONObject `db:"properties"`
	InstanceInfo         JSONObject `db:"instance_info"`
	Extra                JSONObject `db:"extra"`
	InstanceUUID         *string    `db:"instance_uuid"`
	PowerState           *string    `db:"power_state"`
	TargetPowerState     *string    `db:"target_power_state"`
	ProvisionState       string     `db:"provision_state"`
	TargetProvisionState *string    `db:"target_provision_state"`
	ProvisionUpdatedAt   *time.Time `db:"provision_updated_at"`
	Maintenance          bool       `db:"maintenance"`
	MaintenanceReason    *string    `db:"maintenance_reason"`
	Fault                *string    `db:"fault"`
	LastError            *string    `db:"last_error"`
	ResourceClass        *string    `db:"resource_class"`
	ConductorGroup       string     `db:"conductor_group"`
	Owner                *string    `db:"owner"`
	Lessee               *string    `db:"lessee"`
	Description          *string    `db:"description"`
	CreatedAt            time.Time  `db:"created_at"`
	UpdatedAt            *time.Time `db:"updated_at"`

	// The exclusive lock (see lock.go). Reservation is only meaningful
	// while ReservationExpiresAt is in the future.
	Reservation          *string    `db:"reservation"`
	ReservationExpiresAt *time.Time `db:"reservation_expires_at"`
	LockToken            int64      `db:"lock_token"`
	PowerSyncFailures    int        `db:"power_sync_failures"`
}

// LockHolder returns who holds the node's lock at now, or "".
func (n *Node) LockHolder(now time.Time) string {
	if n.Reservation == nil || n.ReservationExpiresAt == nil || !n.ReservationExpiresAt.After(now) {
		return ""
	}
	return *n.Reservation
}

const nodeColumns = `id, uuid, name, driver, driver_info, driver_internal_info, properties,
	instance_info, extra, instance_uuid, power_state, target_power_state, provision_state,
	target_provision_state, provision_updated_at, maintenance, maintenance_reason, fault,
	last_error, resource_class, conductor_group, owner, lessee, description, created_at, updated_at,
	reservation, reservation_expires_at, lock_token, power_sync_failures`

// CreateNode inserts n, filling in its ID, its UUID when empty and its
// creation time.
func CreateNode(ctx context.Context, q Querier, n *Node) error {
	if n.UUID == "" {
		n.UUID = uuid.NewString()
	}
	const query = `INSERT INTO nodes (uuid, name, driver, driver_info, driver_internal_info,
		properties, instance_info, extra, instance_uuid, power_state, provision_state,
		target_provision_state, provision_updated_at, maintenance, maintenance_reason,
		resource_class, conductor_group, owner, lessee, description)
	VALUES (:uuid, :name, :driver, :driver_info, :driver_internal_info, :properties,
		:instance_info, :extra, :instance_uuid, :power_state, :provision_state,
		:target_provision_state, now(), :maintenance, :maintenance_reason, :resource_class,
		:conductor_group, :owner, :lessee, :description)
	RETURNING id, created_at, provision_updated_at`
	rows, err := sqlxNamedQuery(ctx, q, query, n)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return translate(rows.Err())
	}
	return translate(rows.Scan(&n.ID, &n.CreatedAt, &n.ProvisionUpdatedAt))
}

// GetNodeByUUID returns the node with the given UUID.
func GetNodeByUUID(ctx context.Context, q Querier, id string) (*Node, error) {
	var n Node
	err := q.GetContext(ctx, &n, `SELECT `+nodeColumns+` FROM nodes WHERE uuid = $1`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

// GetNodeByID returns the node with the given id.
func GetNodeByID(ctx context.Context, q Querier, id int64) (*Node, error) {
	var n Node
	err := q.GetContext(ctx, &n, `SELECT `+nodeColumns+` FROM nodes WHERE id = $1`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

// GetNodeByName returns the node with the given name.
func GetNodeByName(ctx context.Context, q Querier, name string) (*Node, error) {
	var n Node
	err := q.GetContext(ctx, &n, `SELECT `+nodeColumns+` FROM nodes WHERE name = $1`, name)
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

// GetNode returns the node named by ident, a UUID or a name.
func GetNode(ctx context.Context, q Querier, ident string) (*Node, error) {
	if looksLikeUUID(ident) {
		return GetNodeByUUID(ctx, q, ident)
	}
	return GetNodeByName(ctx, q, ident)
}

// looksLikeUUID tells node UUIDs from names, which may not be UUID-shaped.
func looksLikeUUID(ident string) bool {
	_, err := uuid.Parse(ident)
	return err == nil && len(ident) == 36
}

// DeleteNode removes the node and, through the foreign key, its ports.
func DeleteNode(ctx context.Context, q Querier, id int64) error {
	res, err := q.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, id)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// NodeSortKeys maps the sort keys clients may use to SQL expressions. JSON
// columns are absent on purpose: they cannot be ordered meaningfully.
var NodeSortKeys = map[string]string{
	"id":                     "id",
	"uuid":                   "uuid",
	"name":                   "COALESCE(name, '')",
	"driver":                 "driver",
	"power_state":            "COALESCE(power_state, '')",
	"provision_state":        "provision_state",
	"target_provision_state": "COALESCE(target_provision_state, '')",
	"maintenance":            "maintenance",
	"resource_class":         "COALESCE(resource_class, '')",
	"conductor_group":        "conductor_group",
	"owner":                  "COALESCE(owner, '')",
	"created_at":             "created_at",
	"updated_at":             "COALESCE(updated_at, created_at)",
	"provision_updated_at":   "COALESCE(provision_updated_at, created_at)",
	"instance_uuid":          "COALESCE(instance_uuid::text, '')",
}

// NodeQuery selects and orders a page of nodes. Zero fields do not filter.
type NodeQuery struct {
	Limit      int    // rows to return; must be positive
	MarkerUUID string // return rows after this node, in the requested order
	SortKey    string // a key of NodeSortKeys; default id
	SortDesc   bool

	ProvisionState string
	Driver         string
	Maintenance    *bool
	Associated     *bool // instance_uuid set or not
	ResourceClass  string
	ConductorGroup string
	Fault          string
	Owner          string
}

// ListNodes returns a page of nodes. Paging is by keyset (sort value, id) so
// that deep pages cost the same as the first one. An unknown marker is
// ErrNotFound.
func ListNodes(ctx context.Context, q Querier, nq NodeQuery) ([]Node, error) {
	sortExpr, ok := NodeSortKeys[nq.SortKey]
	if nq.SortKey == "" {
		sortExpr, ok = "id", true
	}
	if !ok {
		return nil, fmt.Errorf("store: unknown sort key %q", nq.SortKey)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = "+arg(v))
		}
	}
	eq("provision_state", nq.ProvisionState)
	eq("driver", nq.Driver)
	eq("resource_class", nq.ResourceClass)
	eq("conductor_group", nq.ConductorGroup)
	eq("fault", nq.Fault)
	eq("owner", nq.Owner)
	if nq.Maintenance != nil {
		where = append(where, "maintenance = "+arg(*nq.Maintenance))
	}
	if nq.Associated != nil {
		if *nq.Associated {
			where = append(where, "instance_uuid IS NOT NULL")
		} else {
			where = append(where, "instance_uuid IS NULL")
		}
	}
	dir, cmp := "ASC", ">"
	if nq.SortDesc {
		dir, cmp = "DESC", "<"
	}
	if nq.MarkerUUID != "" {
		marker, err := GetNodeByUUID(ctx, q, nq.MarkerUUID)
		if err != nil {
			return nil, err
		}
		where = append(where, fmt.Sprintf("(%s, id) %s (SELECT %s, id FROM nodes WHERE id = %s)",
			sortExpr, cmp, sortExpr, arg(marker.ID)))
	}
	query := `SELECT ` + nodeColumns + ` FROM nodes`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s %s, id %s LIMIT %s", sortExpr, dir, dir, arg(nq.Limit))
	nodes := []Node{}
	if err := q.SelectContext(ctx, &nodes, query, args...); err != nil {
		return nil, translate(err)
	}
	return nodes, nil
}
