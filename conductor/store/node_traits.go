package store

import (
	"context"

	"github.com/lib/pq"
)

// SetNodeTraits replaces the node's traits with traits (distinct).
func SetNodeTraits(ctx context.Context, q Querier, nodeID int64, traits []string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM node_traits WHERE node_id = $1`, nodeID); err != nil {
		return translate(err)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO node_traits (node_id, trait)
		SELECT $1, t FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING`, nodeID, pq.Array(traits))
	return translate(err)
}

// AddNodeTrait adds one trait to the node; adding one it has changes nothing.
func AddNodeTrait(ctx context.Context, q Querier, nodeID int64, trait string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO node_traits (node_id, trait) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, nodeID, trait)
	return translate(err)
}

// RemoveNodeTrait removes one trait from the node; ErrNotFound when the node
// does not have it.
func RemoveNodeTrait(ctx context.Context, q Querier, nodeID int64, trait string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM node_traits WHERE node_id = $1 AND trait = $2`, nodeID, trait)
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
