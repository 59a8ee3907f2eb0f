package store

import (
	"context"

	"github.com/lib/pq"
)

// RegisterConductor records a running conductor and the drivers it serves,
// replacing any earlier registration under the same name.
func RegisterConductor(ctx context.Context, q Querier, name string, drivers []string, group string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO conductors (name, drivers, conductor_group)
		VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET drivers = $2, conductor_group = $3,
		    started_at = now(), heartbeat_at = now()`, name, pq.Array(drivers), group)
	return translate(err)
}

// HeartbeatConductor marks a conductor alive now. A registration removed
// meanwhile (an operator cleaning up) is ErrNotFound.
func HeartbeatConductor(ctx context.Context, q Querier, name string) error {
	res, err := q.ExecContext(ctx, `UPDATE conductors SET heartbeat_at = now() WHERE name = $1`, name)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UnregisterConductor removes a stopping conductor's registration.
func UnregisterConductor(ctx context.Context, q Querier, name string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM conductors WHERE name = $1`, name)
	return translate(err)
}
