package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Port is a row of the ports table. NodeUUID is filled by the reads, which
// join the owning node.
type Port struct {
	ID                  int64      `db:"id"`
	UUID                string     `db:"uuid"`
	Address             string     `db:"address"`
	NodeID              int64      `db:"node_id"`
	NodeUUID            string     `db:"node_uuid"`
	PXEEnabled          bool       `db:"pxe_enabled"`
	LocalLinkConnection JSONObject `db:"local_link_connection"`
	PhysicalNetwork     *string    `db:"physical_network"`
	Extra               JSONObject `db:"extra"`
	CreatedAt           time.Time  `db:"created_at"`
	UpdatedAt           *time.Time `db:"updated_at"`
}

const portColumns = `p.id, p.uuid, p.address, p.node_id, n.uuid AS node_uuid, p.pxe_enabled,
	p.local_link_connection, p.physical_network, p.extra, p.created_at, p.updated_at`

// CreatePort inserts p (whose Address must already be normalised), filling
// in its ID, its UUID when empty and its creation time.
func CreatePort(ctx context.Context, q Querier, p *Port) error {
	if p.UUID == "" {
		p.UUID = uuid.NewString()
	}
	const query = `INSERT INTO ports (uuid, address, node_id, pxe_enabled, local_link_connection,
		physical_network, extra)
	VALUES (:uuid, :address, :node_id, :pxe_enabled, :local_link_connection, :physical_network, :extra)
	RETURNING id, created_at`
	rows, err := sqlxNamedQuery(ctx, q, query, p)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return translate(rows.Err())
	}
	return translate(rows.Scan(&p.ID, &p.CreatedAt))
}

// GetPortByUUID returns the port with the given UUID.
func GetPortByUUID(ctx context.Context, q Querier, id string) (*Port, error) {
	var p Port
	err := q.GetContext(ctx, &p, `SELECT `+portColumns+`
		FROM ports p JOIN nodes n ON n.id = p.node_id WHERE p.uuid = $1`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &p, nil
}

// PortSortKeys maps the sort keys clients may use to SQL expressions.
var PortSortKeys = map[string]string{
	"id":               "p.id",
	"uuid":             "p.uuid",
	"address":          "p.address",
	"pxe_enabled":      "p.pxe_enabled",
	"physical_network": "COALESCE(p.physical_network, '')",
	"created_at":       "p.created_at",
	"updated_at":       "COALESCE(p.updated_at, p.created_at)",
}

// PortQuery selects and orders a page of ports. Zero fields do not filter.
type PortQuery struct {
	Limit    int
	MarkerID int64  // return rows after this port, in the requested order
	SortKey  string // a key of PortSortKeys; default id
	SortDesc bool
	NodeID   int64
	Address  string // normalised MAC
}

// ListPorts returns a page of ports, paged by keyset (sort value, id).
func ListPorts(ctx context.Context, q Querier, query PortQuery) ([]Port, error) {
	sortExpr, dir, cmp, err := sortOrder(PortSortKeys, query.SortKey, "p.id", query.SortDesc)
	if err != nil {
		return nil, err
	}
	var c conditions
	if query.NodeID != 0 {
		c.add("p.node_id = " + c.arg(query.NodeID))
	}
	if query.Address != "" {
		c.add("p.address = " + c.arg(query.Address))
	}
	if query.MarkerID != 0 {
		c.add(fmt.Sprintf("(%s, p.id) %s (SELECT %s, p.id FROM ports p WHERE p.id = %s)",
			sortExpr, cmp, sortExpr, c.arg(query.MarkerID)))
	}
	sql := `SELECT ` + portColumns + ` FROM ports p JOIN nodes n ON n.id = p.node_id` + c.clause()
	sql += fmt.Sprintf(" ORDER BY %s %s, p.id %s LIMIT %s", sortExpr, dir, dir, c.arg(query.Limit))
	ports := []Port{}
	err = q.SelectContext(ctx, &ports, sql, c.args...)
	return ports, translate(err)
}

// GetPortForUpdate reads a port by UUID and locks its row until the
// transaction ends.
func GetPortForUpdate(ctx context.Context, q Querier, id string) (*Port, error) {
	var p Port
	err := q.GetContext(ctx, &p, `SELECT `+portColumns+`
		FROM ports p JOIN nodes n ON n.id = p.node_id WHERE p.uuid = $1 FOR UPDATE OF p`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &p, nil
}

// UpdatePort writes the editable columns of p (Address already normalised).
func UpdatePort(ctx context.Context, q Querier, p *Port) error {
	res, err := q.ExecContext(ctx, `UPDATE ports SET address = $2, node_id = $3, pxe_enabled = $4,
		local_link_connection = $5, physical_network = $6, extra = $7, updated_at = now()
		WHERE id = $1`, p.ID, p.Address, p.NodeID, p.PXEEnabled, p.LocalLinkConnection, p.PhysicalNetwork, p.Extra)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeletePort removes a port.
func DeletePort(ctx context.Context, q Querier, id int64) error {
	res, err := q.ExecContext(ctx, `DELETE FROM ports WHERE id = $1`, id)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// NodeIDsByPortAddresses returns the distinct ids of nodes owning a port
// with one of the given (normalised) addresses.
func NodeIDsByPortAddresses(ctx context.Context, q Querier, addresses []string) ([]int64, error) {
	ids := []int64{}
	err := q.SelectContext(ctx, &ids,
		`SELECT DISTINCT node_id FROM ports WHERE address = ANY($1) ORDER BY node_id`,
		pq.Array(addresses))
	return ids, translate(err)
}
