package conductor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

// WorkerConfig configures RunWorkers.
type WorkerConfig struct {
	// Pools gives the number of workers per pool; a pool absent or zero
	// is not served by this process.
	Pools map[string]int
	// PollInterval is how often an idle pool looks for new tasks. Default
	// 100 ms.
	PollInterval time.Duration
	// Grace is how long running tasks may finish after ctx ends before
	// they are cancelled. Default 15 s.
	Grace time.Duration
}

// RunWorkers claims and runs tasks for the enabled drivers until ctx ends,
// then lets running tasks finish for up to cfg.Grace and cancels the rest.
// It owns every goroutine it starts and returns only when all have ended.
func (c *Conductor) RunWorkers(ctx context.Context, cfg WorkerConfig) error {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 15 * time.Second
	}
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	var running, dispatchers sync.WaitGroup
	for pool, n := range cfg.Pools {
		if n <= 0 {
			continue
		}
		dispatchers.Add(1)
		go func() { // ends when ctx ends
			defer dispatchers.Done()
			c.dispatch(ctx, runCtx, pool, n, cfg.PollInterval, &running)
		}()
	}
	dispatchers.Wait() // ctx has ended: nothing new is claimed

	finished := make(chan struct{})
	go func() { running.Wait(); close(finished) }() // ends when the tasks below end
	select {
	case <-finished:
	case <-time.After(cfg.Grace):
		c.log.Warn("tasks still running after the grace period; cancelling them", "grace", cfg.Grace)
		cancelRuns()
		<-finished
	}
	return nil
}

// dispatch claims tasks of one pool while it has free workers.
func (c *Conductor) dispatch(ctx, runCtx context.Context, pool string, workers int, poll time.Duration, running *sync.WaitGroup) {
	slots := make(chan struct{}, workers)
	freed := make(chan struct{}, workers)
	backoff := poll
	for ctx.Err() == nil {
		free := workers - len(slots)
		if free == 0 {
			select {
			case <-ctx.Done():
			case <-freed:
			}
			continue
		}
		tasks, err := store.ClaimTasks(ctx, c.db, pool, c.opts.Name, c.drivers.EnabledNames(), free, c.opts.TaskLease)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("claiming tasks failed; backing off", "pool", pool, "error", err, "retry_in", backoff)
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = poll
		for _, t := range tasks {
			slots <- struct{}{}
			running.Add(1)
			go func() { // ends when the task ends; runCtx bounds it at shutdown
				defer running.Done()
				defer func() {
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				c.runTask(runCtx, t)
			}()
		}
		if len(tasks) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(poll):
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// runTask runs one claimed task and records its outcome.
func (c *Conductor) runTask(ctx context.Context, t store.Task) {
	spec := taskSpecs[t.Kind]
	tctx, cancel := context.WithTimeout(ctx, time.Duration(t.TimeoutMS)*time.Millisecond)
	defer cancel()
	stopRenew := c.renewTaskLease(tctx, cancel, t)
	err := c.execute(tctx, &t)
	stopRenew()

	// Outcomes are written even when ctx has ended (shutdown).
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer wcancel()
	log := c.log.With("task_id", t.ID, "kind", t.Kind, "attempt", t.Attempt)
	var outcome error
	switch {
	case err == nil:
		outcome = store.FinishTask(wctx, c.db, t.ID, t.ClaimToken, store.TaskDone, nil)
	case errors.Is(err, errNodeBusy):
		outcome = store.SnoozeTask(wctx, c.db, t.ID, t.ClaimToken, time.Second)
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("task lease lost; another conductor may run it", "error", err)
		return
	case ctx.Err() != nil && spec.retrySafe:
		outcome = store.RetryTask(wctx, c.db, t.ID, t.ClaimToken, 0, strPtr("conductor stopped"))
	case spec.retrySafe && isRetryable(err) && t.Attempt < t.MaxAttempts:
		delay := c.opts.RetryBackoff << min(t.Attempt-1, 6)
		log.Warn("task failed; will retry", "error", err, "retry_in", delay)
		outcome = store.RetryTask(wctx, c.db, t.ID, t.ClaimToken, delay, strPtr(err.Error()))
	default:
		if ctx.Err() != nil {
			err = fmt.Errorf("conductor %s stopped during the task: %w", c.opts.Name, err)
		}
		log.Warn("task failed", "error", err)
		c.giveUp(wctx, &t, err)
		outcome = store.FinishTask(wctx, c.db, t.ID, t.ClaimToken, store.TaskFailed, strPtr(err.Error()))
	}
	if outcome != nil && !errors.Is(outcome, store.ErrLeaseLost) {
		log.Error("recording task outcome failed; the task lease will expire and it will be recovered", "error", outcome)
	}
}

// renewTaskLease keeps the task claimed while it runs; if the claim is lost
// it cancels the task. The returned function stops renewal and waits.
func (c *Conductor) renewTaskLease(ctx context.Context, cancel context.CancelFunc, t store.Task) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // ends on stop or ctx end
		defer close(done)
		tick := time.NewTicker(c.opts.TaskLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := store.RenewTaskLease(ctx, c.db, t.ID, t.ClaimToken, c.opts.TaskLease)
			if errors.Is(err, store.ErrLeaseLost) {
				c.log.Error("task claim lost; cancelling it", "task_id", t.ID)
				cancel()
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (c *Conductor) execute(ctx context.Context, t *store.Task) error {
	switch t.Kind {
	case KindPower:
		return c.runPower(ctx, t)
	case KindProvision:
		return c.runProvision(ctx, t)
	case KindVendor:
		return c.runVendor(ctx, t)
	}
	return fmt.Errorf("unknown task kind %q", t.Kind)
}

func strPtr(s string) *string { return &s }
