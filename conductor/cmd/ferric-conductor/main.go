// Command ferric-conductor runs the conductor's workers: durable tasks and
// periodic work. Any number of conductors may share one database.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/startup"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/shared/buildinfo"
	"github.com/ferric-metal/ferric/shared/config"
)

func main() {
	startup.Main("ferric-conductor", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stderr) })
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, log, err := startup.Configure(config.Conductor, args, getenv, stderr)
	if err != nil {
		return err
	}
	log = log.With("conductor", cfg.ConductorName)
	reg, err := builtin.Enabled(cfg.EnabledDrivers)
	if err != nil {
		return err
	}
	defer reg.Close()
	db, err := startup.Database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	c := conductor.New(db, reg, log, conductor.Options{Name: cfg.ConductorName, LockTTL: cfg.LockTTL, TaskLease: cfg.TaskLease,
		FastTrack: cfg.FastTrack, SkipAutomatedClean: !cfg.AutomatedClean, CleanErase: cfg.CleanErase,
		PowerStateTimeout: cfg.PowerStateTimeout})
	callbackTimeout := cfg.CallbackTimeout
	if callbackTimeout == 0 {
		callbackTimeout = -1 // the setting's 0 is Ironic's: no timeout
	}
	log.Info("conductor started", "version", buildinfo.Version, "drivers", reg.EnabledNames(),
		"operator_workers", cfg.OperatorWorkers, "agent_workers", cfg.AgentWorkers)

	// Workers and periodic work stop together: if one fails, the other is
	// told to stop too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer cancel()
		errs[0] = c.RunWorkers(ctx, conductor.WorkerConfig{
			Pools: map[string]int{conductor.PoolOperator: cfg.OperatorWorkers, conductor.PoolAgent: cfg.AgentWorkers},
			Grace: cfg.ShutdownGrace,
		})
	}()
	go func() {
		defer wg.Done()
		defer cancel()
		errs[1] = c.RunPeriodic(ctx, conductor.PeriodicConfig{
			PowerSyncInterval:    cfg.PowerSyncInterval,
			PowerSyncWorkers:     cfg.PowerSyncWorkers,
			PowerSyncTimeout:     cfg.PowerSyncTimeout,
			PowerSyncMaxFailures: cfg.PowerSyncMaxFailures,
			ForcePowerState:      cfg.ForcePowerState,
			CallbackTimeout:      callbackTimeout,
		})
	}()
	wg.Wait()
	log.Info("conductor stopped")
	return errors.Join(errs...)
}
