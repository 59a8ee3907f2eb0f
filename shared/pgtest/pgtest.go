// Package pgtest gives each test its own PostgreSQL database.
//
// A test package calls Main from its TestMain. When FERRIC_TEST_DATABASE_URL
// is set, that server is used; otherwise a throwaway cluster is started with
// pgcluster and removed afterwards. Either way a template database is
// migrated once, and NewDB clones it (CREATE DATABASE ... TEMPLATE), which is
// much faster than migrating per test.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the PostgreSQL driver

	"github.com/ferric-metal/ferric/shared/pgcluster"
)

var (
	serverURL string // admin connection to the test server
	template  string
	counter   atomic.Int64
	ready     bool
)

// Main sets up the server and template, runs the tests and cleans up. migrate
// brings an empty database to the current schema.
func Main(m *testing.M, migrate func(ctx context.Context, db *sql.DB) error) {
	os.Exit(run(m, migrate))
}

func run(m *testing.M, migrate func(ctx context.Context, db *sql.DB) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	serverURL = os.Getenv("FERRIC_TEST_DATABASE_URL")
	if serverURL == "" {
		dir, err := os.MkdirTemp("", "ferric-pgtest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil { // the server may run as user postgres
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			return 1
		}
		cluster, err := pgcluster.Start(ctx, dir+"/data")
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: cannot start a throwaway PostgreSQL:", err)
			return 1
		}
		defer cluster.Kill()
		serverURL = cluster.URL("postgres")
	}
	template = fmt.Sprintf("ferric_tmpl_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if err := createTemplate(ctx, migrate); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	defer dropDatabase(template)
	ready = true
	return m.Run()
}

func createTemplate(ctx context.Context, migrate func(ctx context.Context, db *sql.DB) error) error {
	if err := exec(ctx, "CREATE DATABASE "+template); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	db, err := sql.Open("postgres", withDatabase(serverURL, template))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

// URL returns the connection URL of a fresh, migrated database that is
// dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	if !ready {
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	name := fmt.Sprintf("%s_t%d", template, counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return withDatabase(serverURL, name)
}

// NewDB returns an open connection pool to a fresh, migrated database.
func NewDB(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", URL(t))
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	// Like store.Open: keep connections instead of reopening one per query
	// (database/sql keeps only two idle by default).
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(40)
	t.Cleanup(func() { db.Close() }) // runs before the drop: cleanups are LIFO
	return db
}

func exec(ctx context.Context, stmt string) error {
	db, err := sql.Open("postgres", serverURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}
