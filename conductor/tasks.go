package conductor

import (
	"context"
	"errors"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// Task pools. Each conductor runs a bounded set of workers per pool, so a
// flood of one kind of work cannot starve the others.
const (
	PoolOperator = "operator" // work an operator asked for: power, provisioning, async passthru
	PoolAgent    = "agent"    // work an agent's checkin triggered
	PoolPeriodic = "periodic" // reserved for periodic work queued as tasks
)

// Task kinds.
const (
	KindPower     = "power"
	KindProvision = "provision"
	KindVendor    = "vendor"
)

// taskSpec says how a kind of task runs.
type taskSpec struct {
	timeout     time.Duration // deadline of one attempt
	maxAttempts int
	// retrySafe: the task may run again from the start after a crash or
	// a retryable error (power actions are idempotent; provisioning moves
	// the node to a failed state instead).
	retrySafe bool
}

var taskSpecs = map[string]taskSpec{
	KindPower:     {timeout: 15 * time.Minute, maxAttempts: 3, retrySafe: true},
	KindProvision: {timeout: 30 * time.Minute, maxAttempts: 1},
	KindVendor:    {timeout: 15 * time.Minute, maxAttempts: 1},
}

// enqueue inserts a task for node in tx, refusing with fault.Unavailable when
// the pool's queue is full, so that clients are told at once to retry
// instead of piling up work nobody will reach.
func (c *Conductor) enqueue(ctx context.Context, q store.Querier, pool, kind string, node *store.Node, args store.JSONObject) (*store.Task, error) {
	if limit := c.opts.QueueLimits[pool]; limit > 0 {
		n, err := store.CountQueued(ctx, q, pool, limit)
		if err != nil {
			return nil, err
		}
		if n >= limit {
			return nil, fault.New(fault.Unavailable, "No free conductor worker available: %d tasks are already waiting. Retry later.", n)
		}
	}
	spec := taskSpecs[kind]
	timeout := spec.timeout
	if c.opts.TaskTimeout > 0 {
		timeout = c.opts.TaskTimeout
	}
	t := &store.Task{Kind: kind, Pool: pool, Args: args, MaxAttempts: spec.maxAttempts, TimeoutMS: int(timeout.Milliseconds())}
	if node != nil {
		t.NodeID, t.Driver = &node.ID, &node.Driver
	}
	if err := store.EnqueueTask(ctx, q, t); err != nil {
		return nil, err
	}
	return t, nil
}

// errRetry marks an error after which a retry-safe task may run again.
type retryableError struct{ error }

func (e retryableError) Unwrap() error { return e.error }

func retryable(err error) error { return retryableError{err} }

func isRetryable(err error) bool {
	var r retryableError
	return errors.As(err, &r)
}

// errNodeBusy means the task's node lock is held: the task waits its turn.
var errNodeBusy = errors.New("node locked by another task")
