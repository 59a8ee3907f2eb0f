package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Chassis is a row of the chassis table: a named group of nodes.
type Chassis struct {
	ID          int64      `db:"id"`
	UUID        string     `db:"uuid"`
	Description *string    `db:"description"`
	Extra       JSONObject `db:"extra"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   *time.Time `db:"updated_at"`
}

// Constraint names that callers turn into client messages.
const (
	ChassisUUIDUnique     = "chassis_uuid_key"
	NodeChassisForeignKey = "nodes_chassis_id_fkey"
)

const chassisColumns = `id, uuid, description, extra, created_at, updated_at`

// CreateChassis inserts ch, filling in its ID, its UUID when empty and its
// creation time.
func CreateChassis(ctx context.Context, q Querier, ch *Chassis) error {
	if ch.UUID == "" {
		ch.UUID = uuid.NewString()
	}
	err := q.QueryRowxContext(ctx, `INSERT INTO chassis (uuid, description, extra)
		VALUES ($1, $2, $3) RETURNING id, created_at`, ch.UUID, ch.Description, ch.Extra).
		Scan(&ch.ID, &ch.CreatedAt)
	return translate(err)
}

// GetChassisByUUID returns the chassis with the given UUID.
func GetChassisByUUID(ctx context.Context, q Querier, id string) (*Chassis, error) {
	var ch Chassis
	err := q.GetContext(ctx, &ch, `SELECT `+chassisColumns+` FROM chassis WHERE uuid = $1`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &ch, nil
}

// GetChassisForUpdate reads a chassis by UUID and locks its row until the
// transaction ends.
func GetChassisForUpdate(ctx context.Context, q Querier, id string) (*Chassis, error) {
	var ch Chassis
	err := q.GetContext(ctx, &ch, `SELECT `+chassisColumns+` FROM chassis WHERE uuid = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &ch, nil
}

// ChassisSortKeys maps the sort keys clients may use to SQL expressions.
var ChassisSortKeys = map[string]string{
	"id":          "id",
	"uuid":        "uuid",
	"description": "COALESCE(description, '')",
	"created_at":  "created_at",
	"updated_at":  "COALESCE(updated_at, created_at)",
}

// ChassisQuery selects and orders a page of chassis.
type ChassisQuery struct {
	Limit    int
	MarkerID int64  // return rows after this chassis, in the requested order
	SortKey  string // a key of ChassisSortKeys; default id
	SortDesc bool
}

// ListChassis returns a page of chassis, paged by keyset (sort value, id).
func ListChassis(ctx context.Context, q Querier, cq ChassisQuery) ([]Chassis, error) {
	sortExpr, dir, cmp, err := sortOrder(ChassisSortKeys, cq.SortKey, "id", cq.SortDesc)
	if err != nil {
		return nil, err
	}
	var c conditions
	if cq.MarkerID != 0 {
		c.add(fmt.Sprintf("(%s, id) %s (SELECT %s, id FROM chassis WHERE id = %s)", sortExpr, cmp, sortExpr, c.arg(cq.MarkerID)))
	}
	query := `SELECT ` + chassisColumns + ` FROM chassis` + c.clause() +
		fmt.Sprintf(" ORDER BY %s %s, id %s LIMIT %s", sortExpr, dir, dir, c.arg(cq.Limit))
	chassis := []Chassis{}
	err = q.SelectContext(ctx, &chassis, query, c.args...)
	return chassis, translate(err)
}

// UpdateChassis writes the editable columns of ch.
func UpdateChassis(ctx context.Context, q Querier, ch *Chassis) error {
	res, err := q.ExecContext(ctx, `UPDATE chassis SET description = $2, extra = $3, updated_at = now()
		WHERE id = $1`, ch.ID, ch.Description, ch.Extra)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteChassis removes a chassis. One that still holds nodes is a
// *ConflictError on NodeChassisForeignKey.
func DeleteChassis(ctx context.Context, q Querier, id int64) error {
	res, err := q.ExecContext(ctx, `DELETE FROM chassis WHERE id = $1`, id)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ChassisHasNodes reports whether any node sits in the chassis.
func ChassisHasNodes(ctx context.Context, q Querier, id int64) (bool, error) {
	var has bool
	err := q.GetContext(ctx, &has, `SELECT EXISTS (SELECT 1 FROM nodes WHERE chassis_id = $1)`, id)
	return has, translate(err)
}
