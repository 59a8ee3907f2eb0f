// Package store is Ferric's PostgreSQL persistence: plain SQL beside the code
// that scans it, one file per table.
//
// Every function takes a context and a Querier, so it runs on the pool or
// inside a transaction alike (see Transact). A missing row is ErrNotFound,
// never a nil result; a unique or foreign-key violation is a *ConflictError
// naming the constraint; both translations happen in translate, and nowhere
// else.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ferric-metal/ferric/shared/fault"
)

// Querier is what store functions need: satisfied by *sqlx.DB and *sqlx.Tx.
type Querier interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

var (
	_ Querier = (*sqlx.DB)(nil)
	_ Querier = (*sqlx.Tx)(nil)
)

// ErrNotFound is returned when a row does not exist. It matches
// fault.ErrNotFound under errors.Is.
var ErrNotFound = &fault.Error{Kind: fault.NotFound, Message: "not found"}

// Constraint names that callers turn into client messages.
const (
	NodeUUIDUnique         = "nodes_uuid_key"
	NodeNameUnique         = "nodes_name_key"
	NodeInstanceUUIDUnique = "nodes_instance_uuid_key"
	NodeNameNotUUID        = "nodes_name_not_uuid"
	PortAddressUnique      = "ports_address_key"
	PortUUIDUnique         = "ports_uuid_key"
	PortNodeForeignKey     = "ports_node_id_fkey"
)

// ConflictError reports a violated unique, foreign-key or check constraint.
// It matches fault.ErrConflict under errors.Is.
type ConflictError struct {
	Constraint string
	Err        error
}

func (e *ConflictError) Error() string { return "constraint " + e.Constraint + " violated" }
func (e *ConflictError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, fault.ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == fault.ErrConflict }

// translate is the one place where driver errors become store errors.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "23505", "23503", "23514": // unique, foreign key, check
			if field, ok := nodeDocumentConstraints[pqErr.Constraint]; ok {
				return documentTooLarge(field, "the new document", err)
			}
			return &ConflictError{Constraint: pqErr.Constraint, Err: err}
		}
	}
	return err
}

// Open connects to PostgreSQL and waits up to wait for it to answer, retrying
// with backoff so that a program started alongside its database does not fail.
// A malformed URL is refused at once: waiting cannot mend it.
func Open(ctx context.Context, url string, maxConns int, wait time.Duration, log *slog.Logger) (*sqlx.DB, error) {
	if err := CheckDatabaseURL(url); err != nil {
		return nil, err
	}
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)

	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = db.PingContext(pingCtx)
		cancel()
		if err == nil {
			return db, nil
		}
		if time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("database unreachable after %s: %w", wait, err)
		}
		log.Warn("database not reachable yet; retrying", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// CheckDatabaseURL reports whether dsn is a connection string PostgreSQL's
// driver can use: a postgres:// (or postgresql://) URL or key=value pairs.
// Its error never contains the string itself, which may hold a password.
func CheckDatabaseURL(dsn string) error {
	const what = "FERRIC_DATABASE_URL is malformed"
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if _, err := neturl.Parse(dsn); err != nil {
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error quotes the whole URL, password and all
			}
			return fmt.Errorf("%s: %s", what, redactURLError(err.Error(), dsn))
		}
	} else if strings.Contains(dsn, "://") {
		return fmt.Errorf("%s: want a postgres:// or postgresql:// URL or key=value pairs", what)
	}
	if _, err := pq.NewConnector(dsn); err != nil {
		// pq's messages may quote parts of the string (a password among
		// them): only say which form failed.
		return fmt.Errorf("%s: it does not parse as %s", what, dsnForm(dsn))
	}
	return nil
}

func dsnForm(dsn string) string {
	if strings.Contains(dsn, "://") {
		return "a postgres:// URL"
	}
	return "key=value pairs"
}

// redactURLError removes dsn's password from msg, should a parser quote it.
func redactURLError(msg, dsn string) string {
	rest := dsn[strings.Index(dsn, "://")+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			if pw := rest[colon+1 : at]; pw != "" {
				msg = strings.ReplaceAll(msg, pw, "******")
			}
		}
	}
	return msg
}

// Transact runs fn in a transaction, committing if it returns nil and
// rolling back on error or panic. A transaction PostgreSQL aborts to break
// a deadlock is run again (up to three times): fn must only touch the
// database.
func Transact(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	var err error
	for range 3 {
		if err = transactOnce(ctx, db, fn); !isDeadlock(err) {
			return err
		}
	}
	return err
}

func isDeadlock(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "40P01" || pqErr.Code == "40001")
}

func transactOnce(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return translate(err)
	}
	return nil
}

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings db to the latest schema. Concurrent callers (several
// programs started at once with auto-migrate) serialise on an advisory lock.
func Migrate(ctx context.Context, db *sql.DB) error {
	p, err := migrationProvider(db, true)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// PendingMigrations reports how many migrations have not been applied.
func PendingMigrations(ctx context.Context, db *sql.DB) (int, error) {
	p, err := migrationProvider(db, false) // a read: no need to queue behind a migrating process
	if err != nil {
		return 0, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}

func migrationProvider(db *sql.DB, locking bool) (*goose.Provider, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if locking {
		// Retry the advisory lock every second (goose waits 5 s between tries)
		// for up to five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), opts...)
}
