// Command ferric-conductor runs the conductor's workers: durable tasks and
// periodic work. Any number of conductors may share one database.
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

	"github.com/ferric-metal/ferric/conductor/startup"
	"github.com/ferric-metal/ferric/shared/buildinfo"
	"github.com/ferric-metal/ferric/shared/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ferric-conductor:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, _, err := config.Load(config.Conductor, args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := startup.Logger(cfg, stderr)
	if err != nil {
		return err
	}
	log = log.With("program", config.Conductor, "conductor", cfg.ConductorName)
	reg, err := startup.Drivers(cfg)
	if err != nil {
		return err
	}
	db, err := startup.Database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("conductor started", "version", buildinfo.Version, "drivers", reg.EnabledNames())
	<-ctx.Done()
	log.Info("conductor stopping")
	return nil
}
