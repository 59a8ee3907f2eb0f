// Command ferric-public-api serves Ferric's operator API (Ironic v1 subset)
// on the management network.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/startup"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/buildinfo"
	"github.com/ferric-metal/ferric/shared/config"
	"github.com/ferric-metal/ferric/shared/httpserver"
	"github.com/ferric-metal/ferric/shared/token"
)

func main() {
	startup.Main("ferric-public-api", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stderr) })
}

// gcPercent is the garbage collector's target unless GOGC is set: the API's
// live heap is small (a few MB), so collecting less often costs little
// memory and saves about a fifth of the CPU per request (see docs/api.md).
const gcPercent = 400

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	cfg, log, err := startup.Configure(config.PublicAPI, args, getenv, stderr)
	if err != nil {
		return err
	}
	auth, err := authenticator(cfg, log)
	if err != nil {
		return err
	}
	opts := []publicapi.Option{publicapi.WithConcurrency(cfg.APIConcurrency)}
	if cfg.AuditLog != "" {
		f, err := os.OpenFile(cfg.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("audit log (FERRIC_AUDIT_LOG): %w", err)
		}
		defer f.Close()
		opts = append(opts, publicapi.WithAuditLog(slog.New(slog.NewJSONHandler(f, nil))))
	}
	reg, err := builtin.Enabled(cfg.EnabledDrivers)
	if err != nil {
		return err
	}
	ln, err := startup.Listen(cfg.PublicListen)
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := startup.Database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	host, _ := os.Hostname()
	c := conductor.New(db, reg, log, conductor.Options{
		Name:            "public-api@" + host,
		QueueLimits:     map[string]int{conductor.PoolOperator: cfg.OperatorQueueLimit},
		SyncCallWorkers: cfg.SyncCallWorkers,
		SyncCallTimeout: cfg.SyncCallTimeout,
		// An operator's deploy or clean may go on with the agent already
		// running on the node (fast track).
		FastTrack:        cfg.FastTrack,
		FastTrackTimeout: cfg.FastTrackTimeout,
	})
	api := publicapi.New(c, auth, db, log, opts...)
	log.Info("serving operator API", "addr", ln.Addr().String(), "version", buildinfo.Version,
		"auth", cfg.Auth, "drivers", reg.EnabledNames())
	return httpserver.Serve(ctx, ln, api.Handler(), httpserver.DefaultTimeouts, cfg.ShutdownGrace, log)
}

func authenticator(cfg config.Config, log *slog.Logger) (publicapi.Authenticator, error) {
	switch cfg.Auth {
	case "noauth":
		if !startup.IsLoopback(cfg.PublicListen) {
			return nil, fmt.Errorf("FERRIC_AUTH=noauth is only allowed on a loopback listener, not %s", cfg.PublicListen)
		}
		return publicapi.NoAuth{}, nil
	case "http_basic":
		if cfg.HTPasswdFile == "" {
			return nil, fmt.Errorf("FERRIC_AUTH=http_basic needs FERRIC_HTPASSWD_FILE")
		}
		basic, err := publicapi.LoadBasicAuth(cfg.HTPasswdFile, cfg.HTPasswdRoles, log)
		if err != nil {
			return nil, fmt.Errorf("http_basic users (FERRIC_HTPASSWD_FILE, FERRIC_HTPASSWD_ROLES): %w", err)
		}
		return basic, nil
	default:
		keys, err := token.LoadKeys(cfg.OperatorKeysFile)
		if err != nil {
			return nil, fmt.Errorf("operator token keys (FERRIC_OPERATOR_KEYS_FILE): %w", err)
		}
		return publicapi.NewJWTAuth(keys, cfg.TokenIssuer), nil
	}
}
