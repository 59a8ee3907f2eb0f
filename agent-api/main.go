// Command ferric-agent-api serves Ferric's agent API (lookup and checkin) on
// the provisioning VLAN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/startup"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/buildinfo"
	"github.com/ferric-metal/ferric/shared/config"
	"github.com/ferric-metal/ferric/shared/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ferric-agent-api:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, _, err := config.Load(config.AgentAPI, args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := startup.Logger(cfg, stderr)
	if err != nil {
		return err
	}
	log = log.With("program", config.AgentAPI)
	ln, err := startup.Listen(cfg.AgentListen)
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := startup.Database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	// No drivers: this process never talks to a BMC.
	c := conductor.New(db, drivers.NewRegistry(), log, conductor.Options{FastTrack: cfg.FastTrack})
	api := agentapi.New(c, db, log)
	log.Info("serving agent API", "addr", ln.Addr().String(), "version", buildinfo.Version)
	return httpserver.Serve(ctx, ln, api.Handler(), httpserver.DefaultTimeouts, cfg.ShutdownGrace, log)
}
