package store

import (
	"context"
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

// PortQuery selects a page of ports, ordered by id. Zero fields do not filter.
type PortQuery struct {
	Limit    int
	MarkerID int64 // return rows with a larger id
	NodeID   int64
	Address  string // normalised MAC
}

// ListPorts returns a page of ports in id order.
func ListPorts(ctx context.Context, q Querier, query PortQuery) ([]Port, error) {
	ports := []Port{}
	err := q.SelectContext(ctx, &ports, `SELECT `+portColumns+`
		FROM ports p JOIN nodes n ON n.id = p.node_id
		WHERE p.id > $1
		  AND ($2 = 0 OR p.node_id = $2)
		  AND ($3 = '' OR p.address = $3)
		ORDER BY p.id LIMIT $4`, query.MarkerID, query.NodeID, query.Address, query.Limit)
	return ports, translate(err)
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
