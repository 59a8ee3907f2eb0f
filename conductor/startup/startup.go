// Package startup holds the steps every Ferric program takes before serving:
// logger, database (with the schema check or auto-migration) and listener.
// It holds no drivers: the agent API uses it too and must link no BMC code,
// so the programs that drive BMCs get theirs from drivers/builtin.
package startup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/config"
	"github.com/ferric-metal/ferric/shared/logging"
)

// Logger builds the program's logger from the configuration.
func Logger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	return logging.New(w, cfg.LogLevel, cfg.LogFormat)
}

// Database connects, then migrates (auto-migrate) or checks that the schema
// is current, so that a program never runs against a schema it does not know.
func Database(ctx context.Context, cfg config.Config, log *slog.Logger) (*sqlx.DB, error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	maxConns := cfg.DatabaseMaxConns
	if maxConns == 0 {
		maxConns = 4
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, maxConns, cfg.DatabaseWait, log)
	if err != nil {
		return nil, err
	}
	if cfg.AutoMigrate {
		if err := store.Migrate(ctx, db.DB); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	pending, err := store.PendingMigrations(ctx, db.DB)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	if pending > 0 {
		db.Close()
		return nil, fmt.Errorf("the database schema is %d migration(s) behind this program: run `ferric migrate` or set FERRIC_AUTO_MIGRATE=true", pending)
	}
	return db, nil
}

// Listen opens a TCP listener, so that a taken port fails before start-up
// completes.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// IsLoopback reports whether a listen address only accepts local clients.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Main runs a program: run gets a context cancelled by SIGINT or SIGTERM,
// and an error from it is printed (unless it is -h's) and exits with 1.
func Main(program string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, program+":", err)
		}
		os.Exit(1)
	}
}

// Configure reads a service program's settings and builds its logger,
// tagged with the program's name.
func Configure(program string, args []string, getenv func(string) string, stderr io.Writer) (config.Config, *slog.Logger, error) {
	cfg, _, err := config.Load(program, args, getenv, stderr)
	if err != nil {
		return cfg, nil, err
	}
	log, err := Logger(cfg, stderr)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, log.With("program", program), nil
}
