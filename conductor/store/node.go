package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
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
	ChassisID            *int64     `db:"chassis_id"`
	ChassisUUID          *string    `db:"chassis_uuid"` // read only, from chassis_id

	// Interfaces maps hardware interfaces (boot, deploy, ...) to the
	// implementation chosen; an interface absent is the driver's default.
	Interfaces       JSONObject `db:"interfaces"`
	AutomatedClean   *bool      `db:"automated_clean"` // nil: the conductor's setting
	Protected        bool       `db:"protected"`
	ProtectedReason  *string    `db:"protected_reason"`
	Retired          bool       `db:"retired"`
	RetiredReason    *string    `db:"retired_reason"`
	NetworkData      JSONObject `db:"network_data"`
	ConsoleEnabled   bool       `db:"console_enabled"`
	TargetRAIDConfig JSONObject `db:"target_raid_config"`
	// Traits are read with the node (sorted), written by SetNodeTraits.
	Traits pq.StringArray `db:"traits"`

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

// NodeShape says how much of a node a read returns.
type NodeShape int

// Node shapes. Lists that show only a few fields read only their columns:
// less for PostgreSQL to send and for us to decode.
const (
	NodeFull    NodeShape = iota // every column
	NodeNoJSON                   // every column but the JSON ones (driver_info, properties...)
	NodeSummary                  // id, uuid, name, instance_uuid, power_state, provision_state, maintenance
)

// The columns of each shape, in the order scanNode reads them; nodeColumns
// also suits sqlx scans.
const (
	nodeSummaryColumns = `id, uuid, name, instance_uuid, power_state, provision_state, maintenance`
	nodeBaseColumns    = nodeSummaryColumns + `, driver, target_power_state, target_provision_state,
	provision_updated_at, maintenance_reason, fault, last_error, resource_class, conductor_group,
	owner, lessee, description, created_at, updated_at, reservation, reservation_expires_at,
	lock_token, power_sync_failures, chassis_id,
	CASE WHEN chassis_id IS NOT NULL THEN (SELECT c.uuid FROM chassis c WHERE c.id = chassis_id) END AS chassis_uuid,
	automated_clean, protected, protected_reason, retired, retired_reason, console_enabled`
	nodeJSONColumns = `driver_info, driver_internal_info, properties, instance_info, extra,
	interfaces, network_data, target_raid_config,
	ARRAY(SELECT t.trait FROM node_traits t WHERE t.node_id = nodes.id ORDER BY t.trait) AS traits`
	nodeColumns = nodeBaseColumns + `, ` + nodeJSONColumns
)

var nodeShapeColumns = map[NodeShape]string{
	NodeFull: nodeColumns, NodeNoJSON: nodeBaseColumns, NodeSummary: nodeSummaryColumns,
}

// scanNode scans a row of the shape's columns.
func scanNode(rows *sql.Rows, n *Node, shape NodeShape) error {
	dest := make([]any, 0, 32)
	dest = append(dest, &n.ID, &n.UUID, &n.Name, &n.InstanceUUID, &n.PowerState, &n.ProvisionState, &n.Maintenance)
	if shape != NodeSummary {
		dest = append(dest, &n.Driver, &n.TargetPowerState, &n.TargetProvisionState,
			&n.ProvisionUpdatedAt, &n.MaintenanceReason, &n.Fault, &n.LastError, &n.ResourceClass,
			&n.ConductorGroup, &n.Owner, &n.Lessee, &n.Description, &n.CreatedAt, &n.UpdatedAt,
			&n.Reservation, &n.ReservationExpiresAt, &n.LockToken, &n.PowerSyncFailures, &n.ChassisID,
			&n.ChassisUUID, &n.AutomatedClean, &n.Protected, &n.ProtectedReason, &n.Retired,
			&n.RetiredReason, &n.ConsoleEnabled)
	}
	if shape == NodeFull {
		dest = append(dest, &n.DriverInfo, &n.DriverInternalInfo, &n.Properties, &n.InstanceInfo, &n.Extra,
			&n.Interfaces, &n.NetworkData, &n.TargetRAIDConfig, &n.Traits)
	}
	return rows.Scan(dest...)
}

// queryHot runs a read through the pool's cached prepared statement
// (preparedFor) when q is a pool, and directly otherwise: transactions run
// the same SQL unprepared.
func queryHot(ctx context.Context, q Querier, query string, args ...any) (*sql.Rows, error) {
	if db, isPool := q.(*sqlx.DB); isPool {
		return preparedFor(db).QueryContext(ctx, query, args...)
	}
	return q.QueryContext(ctx, query, args...)
}

// queryNodes runs a query selecting a shape's columns and scans every row;
// expect is the number of rows to make room for.
func queryNodes(ctx context.Context, q Querier, shape NodeShape, expect int, query string, args ...any) ([]Node, error) {
	rows, err := queryHot(ctx, q, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	nodes := make([]Node, 0, expect)
	for rows.Next() {
		nodes = append(nodes, Node{})
		if err := scanNode(rows, &nodes[len(nodes)-1], shape); err != nil {
			return nil, translate(err)
		}
	}
	return nodes, translate(rows.Err())
}

func nodeIDByUUID(ctx context.Context, q Querier, id string) (int64, error) {
	rows, err := queryHot(ctx, q, `SELECT id FROM nodes WHERE uuid = $1`, id)
	if err != nil {
		return 0, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, translate(err)
		}
		return 0, ErrNotFound
	}
	var nodeID int64
	return nodeID, translate(rows.Scan(&nodeID))
}

func getNodeWhere(ctx context.Context, q Querier, where string, arg any) (*Node, error) {
	// A cancelable context costs two goroutines per query (lib/pq's and
	// database/sql's watchers), a tenth of a node read's CPU. This read is
	// one probe of a unique index, so without a deadline to keep, a client
	// who leaves need not stop it.
	if _, has := ctx.Deadline(); !has {
		ctx = context.WithoutCancel(ctx)
	}
	nodes, err := queryNodes(ctx, q, NodeFull, 1, `SELECT `+nodeColumns+` FROM nodes WHERE `+where, arg)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, ErrNotFound
	}
	return &nodes[0], nil
}

// CreateNode inserts n, filling in its ID, its UUID when empty and its
// creation time.
func CreateNode(ctx context.Context, q Querier, n *Node) error {
	if n.UUID == "" {
		n.UUID = uuid.NewString()
	}
	const query = `INSERT INTO nodes (uuid, name, driver, driver_info, driver_internal_info,
		properties, instance_info, extra, instance_uuid, power_state, provision_state,
		target_provision_state, provision_updated_at, maintenance, maintenance_reason,
		resource_class, conductor_group, owner, lessee, description, chassis_id,
		interfaces, automated_clean, retired, retired_reason, network_data, console_enabled)
	VALUES (:uuid, :name, :driver, :driver_info, :driver_internal_info, :properties,
		:instance_info, :extra, :instance_uuid, :power_state, :provision_state,
		:target_provision_state, now(), :maintenance, :maintenance_reason, :resource_class,
		:conductor_group, :owner, :lessee, :description, :chassis_id,
		:interfaces, :automated_clean, :retired, :retired_reason, :network_data, :console_enabled)
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
	return getNodeWhere(ctx, q, `uuid = $1`, id)
}

// GetNodeByID returns the node with the given id.
func GetNodeByID(ctx context.Context, q Querier, id int64) (*Node, error) {
	return getNodeWhere(ctx, q, `id = $1`, id)
}

// GetNodeByName returns the node with the given name.
func GetNodeByName(ctx context.Context, q Querier, name string) (*Node, error) {
	return getNodeWhere(ctx, q, `name = $1`, name)
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
	"lessee":                 "COALESCE(lessee, '')",
	"fault":                  "COALESCE(fault, '')",
	"created_at":             "created_at",
	"updated_at":             "COALESCE(updated_at, created_at)",
	"provision_updated_at":   "COALESCE(provision_updated_at, created_at)",
	"instance_uuid":          "COALESCE(instance_uuid::text, '')",
}

// NodeQuery selects and orders a page of nodes. Zero fields do not filter.
type NodeQuery struct {
	Limit      int    // rows to return, 1 to 1000
	MarkerUUID string // return rows after this node, in the requested order
	SortKey    string // a key of NodeSortKeys; default id
	SortDesc   bool

	ProvisionState      string
	Driver              string
	Maintenance         *bool
	Associated          *bool // instance_uuid set or not
	ResourceClass       string
	ConductorGroup      string
	Fault               string
	Owner               string
	Lessee              string
	InstanceUUID        string
	ChassisUUID         string
	DescriptionContains string // case-insensitive substring

	Shape NodeShape // how much of each node to read; default all
}

// ListNodes returns a page of nodes. Paging is by keyset (sort value, id) so
// that deep pages cost the same as the first one. An unknown marker is
// ErrNotFound.
func ListNodes(ctx context.Context, q Querier, nq NodeQuery) ([]Node, error) {
	sortExpr, dir, cmp, err := sortOrder(NodeSortKeys, nq.SortKey, "id", nq.SortDesc)
	if err != nil {
		return nil, err
	}
	var c conditions
	eq := func(col, v string) {
		if v != "" {
			c.add(col + " = " + c.arg(v))
		}
	}
	eq("provision_state", nq.ProvisionState)
	eq("driver", nq.Driver)
	eq("resource_class", nq.ResourceClass)
	eq("conductor_group", nq.ConductorGroup)
	eq("fault", nq.Fault)
	eq("owner", nq.Owner)
	eq("lessee", nq.Lessee)
	eq("instance_uuid", nq.InstanceUUID)
	if nq.ChassisUUID != "" {
		c.add("chassis_id = (SELECT id FROM chassis WHERE uuid = " + c.arg(nq.ChassisUUID) + ")")
	}
	if nq.Maintenance != nil {
		c.add("maintenance = " + c.arg(*nq.Maintenance))
	}
	if nq.Associated != nil {
		if *nq.Associated {
			c.add("instance_uuid IS NOT NULL")
		} else {
			c.add("instance_uuid IS NULL")
		}
	}
	if nq.DescriptionContains != "" {
		c.add("strpos(lower(description), lower(" + c.arg(nq.DescriptionContains) + ")) > 0")
	}
	if nq.MarkerUUID != "" {
		// The marker is looked up in the same statement; an unknown one
		// compares as NULL and yields no rows (told apart below).
		if sortExpr == "id" {
			c.add(fmt.Sprintf("id %s (SELECT id FROM nodes WHERE uuid = %s)", cmp, c.arg(nq.MarkerUUID)))
		} else {
			c.add(fmt.Sprintf("(%s, id) %s (SELECT %s, id FROM nodes WHERE uuid = %s)",
				sortExpr, cmp, sortExpr, c.arg(nq.MarkerUUID)))
		}
	}
	query := `SELECT ` + nodeShapeColumns[nq.Shape] + ` FROM nodes` + c.clause()
	// The limit is written into the SQL, not passed as a parameter: with a
	// parameter, the prepared statement's generic plan cannot know the page
	// is small, and PostgreSQL re-plans every execution (half the throughput).
	if sortExpr == "id" {
		query += fmt.Sprintf(" ORDER BY id %s LIMIT %d", dir, nq.Limit)
	} else {
		query += fmt.Sprintf(" ORDER BY %s %s, id %s LIMIT %d", sortExpr, dir, dir, nq.Limit)
	}
	nodes, err := queryNodes(ctx, q, nq.Shape, nq.Limit, query, c.args...)
	if err == nil && len(nodes) == 0 && nq.MarkerUUID != "" {
		_, err = nodeIDByUUID(ctx, q, nq.MarkerUUID) // an empty last page, or an unknown marker?
	}
	return nodes, err
}

// UpdateNode writes the operator-editable columns of n (the fields of a node
// PATCH and of maintenance) and returns nothing else: state, lock,
// driver_internal_info, console and RAID columns and traits are left alone.
// The caller holds the row lock (GetNodeForUpdate) in its transaction.
func UpdateNode(ctx context.Context, q Querier, n *Node) error {
	const query = `UPDATE nodes SET name = :name, driver = :driver, driver_info = :driver_info,
		properties = :properties, instance_info = :instance_info, extra = :extra,
		instance_uuid = :instance_uuid, maintenance = :maintenance,
		maintenance_reason = :maintenance_reason, fault = :fault, resource_class = :resource_class,
		conductor_group = :conductor_group, owner = :owner, lessee = :lessee,
		description = :description, chassis_id = :chassis_id, interfaces = :interfaces,
		automated_clean = :automated_clean, protected = :protected,
		protected_reason = :protected_reason, retired = :retired, retired_reason = :retired_reason,
		network_data = :network_data, updated_at = now()
	WHERE id = :id`
	bound, args, err := sqlx.Named(query, n)
	if err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, q.Rebind(bound), args...)
	if err != nil {
		return translate(err)
	}
	if rows, _ := res.RowsAffected(); rows == 0 {
		return ErrNotFound
	}
	return nil
}

// SetConsoleEnabled records whether the node's console is enabled.
func SetConsoleEnabled(ctx context.Context, q Querier, nodeID int64, enabled bool) error {
	_, err := q.ExecContext(ctx, `UPDATE nodes SET console_enabled = $2, updated_at = now() WHERE id = $1`, nodeID, enabled)
	return translate(err)
}

// SetTargetRAIDConfig stores the RAID configuration the node is to get.
func SetTargetRAIDConfig(ctx context.Context, q Querier, nodeID int64, config JSONObject) error {
	_, err := q.ExecContext(ctx, `UPDATE nodes SET target_raid_config = $2, updated_at = now() WHERE id = $1`, nodeID, config)
	return translate(err)
}
