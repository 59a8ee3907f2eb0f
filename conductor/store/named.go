package store

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// sqlxNamedQuery runs a query with :name parameters bound from arg's db tags.
func sqlxNamedQuery(ctx context.Context, q Querier, query string, arg any) (*sqlx.Rows, error) {
	bound, args, err := sqlx.Named(query, arg)
	if err != nil {
		return nil, err
	}
	return q.QueryxContext(ctx, q.Rebind(bound), args...)
}
