package store

import (
	"context"
	"database/sql"
	"sync"

	"github.com/jmoiron/sqlx"
)

// maxPreparedStatements bounds the statements a PreparedDB keeps: list
// queries vary with their filters, so rare combinations run unprepared once
// it is full.
const maxPreparedStatements = 256

// PreparedDB is a Querier over a database that prepares each distinct query
// once (per pooled connection, by database/sql) and reuses it: no parse and
// no plan per call, and one round trip per statement instead of two;
// together this more than doubles how many node reads a server answers. It
// is for the APIs' hot paths, which run the same few statements thousands of
// times a second. Transactions use their *sqlx.Tx as usual. It needs
// session-level connections: behind a transaction-pooling PgBouncer older
// than 1.21, set FERRIC_DATABASE_URL's binary_parameters=yes or use session
// pooling.
type PreparedDB struct {
	*sqlx.DB

	mu    sync.RWMutex
	stmts map[string]*sqlx.Stmt
}

var _ Querier = (*PreparedDB)(nil)

// preparedPools holds the PreparedDB of each pool the store's hot reads
// (queryHot) ran on.
var (
	preparedPoolsMu sync.Mutex
	preparedPools   = map[*sqlx.DB]*PreparedDB{}
)

// preparedFor returns db's PreparedDB for the store's hot reads.
func preparedFor(db *sqlx.DB) *PreparedDB {
	preparedPoolsMu.Lock()
	defer preparedPoolsMu.Unlock()
	p, ok := preparedPools[db]
	if !ok {
		p = NewPreparedDB(db)
		preparedPools[db] = p
	}
	return p
}

// NewPreparedDB wraps db. Close releases the statements, not db.
func NewPreparedDB(db *sqlx.DB) *PreparedDB {
	return &PreparedDB{DB: db, stmts: map[string]*sqlx.Stmt{}}
}

// stmt returns the prepared statement of query, preparing it on first use,
// or nil when the cache is full.
func (p *PreparedDB) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	p.mu.RLock()
	s, ok := p.stmts[query]
	full := len(p.stmts) >= maxPreparedStatements
	p.mu.RUnlock()
	if ok || full {
		return s, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.stmts[query]; ok {
		return s, nil
	}
	s, err := p.DB.PreparexContext(ctx, query)
	if err != nil {
		return nil, translate(err)
	}
	p.stmts[query] = s
	return s, nil
}

// ExecContext implements Querier.
func (p *PreparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return p.DB.ExecContext(ctx, query, args...)
	}
	return s.ExecContext(ctx, args...)
}

// QueryContext implements Querier.
func (p *PreparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return p.DB.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

// QueryxContext implements Querier.
func (p *PreparedDB) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	s, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return p.DB.QueryxContext(ctx, query, args...)
	}
	return s.QueryxContext(ctx, args...)
}

// QueryRowxContext implements Querier.
func (p *PreparedDB) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	s, err := p.stmt(ctx, query)
	if err != nil || s == nil {
		return p.DB.QueryRowxContext(ctx, query, args...) // reports the same error, or runs unprepared
	}
	return s.QueryRowxContext(ctx, args...)
}

// GetContext implements Querier.
func (p *PreparedDB) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.GetContext(ctx, p, dest, query, args...)
}

// SelectContext implements Querier.
func (p *PreparedDB) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, p, dest, query, args...)
}

// Close releases the prepared statements.
func (p *PreparedDB) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for q, s := range p.stmts {
		_ = s.Close()
		delete(p.stmts, q)
	}
	return nil
}
