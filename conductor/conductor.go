package conductor

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// Options tune the conductor library. Zero values take the defaults noted.
type Options struct {
	// Name identifies this process as the holder of node locks and task
	// claims. Default: "<program>@<host name>:<pid>".
	Name string
	// FastTrack is Ironic's [deploy]fast_track: agents may look up nodes
	// that are enroll, manageable or available and stay up there; a deploy
	// or clean of a node whose agent checked in within FastTrackTimeout
	// starts on that agent, without a power cycle, and keeps its token; a
	// clean by the agent leaves it running. Every program must agree on it.
	FastTrack bool
	// FastTrackTimeout is how recent an agent's last checkin must be for
	// fast track to reuse it (Ironic's [deploy]fast_track_timeout).
	// Default 300 s.
	FastTrackTimeout time.Duration
	// SkipAutomatedClean turns automated cleaning off (Ironic's
	// [conductor]automated_clean = false): the cleaning after provide and
	// after undeploy does no agent work. Manual cleaning is unaffected.
	SkipAutomatedClean bool
	// CleanErase is what an automated clean erases: CleanEraseMetadata
	// (partition tables and signatures; the default) or CleanEraseFull
	// (every byte).
	CleanErase string
	// QueueLimits bounds the tasks waiting in each pool (PoolOperator,
	// PoolAgent); enqueueing beyond it is fault.Unavailable (503). Zero or
	// absent: unbounded.
	QueueLimits map[string]int
	// SyncCallWorkers bounds synchronous driver calls made while a client
	// waits (boot device, synchronous passthru). Default 8.
	SyncCallWorkers int
	// SyncCallTimeout is the deadline of one synchronous driver call.
	// Default 30 s.
	SyncCallTimeout time.Duration
	// LockTTL is the lease of a node lock, renewed every third of it.
	// Default 30 s.
	LockTTL time.Duration
	// TaskLease is how long a claimed task stays claimed without renewal;
	// renewed every third of it, so a dead conductor's tasks are recovered
	// within about this time. Default 30 s.
	TaskLease time.Duration
	// TaskTimeout, when set, replaces every task kind's deadline per
	// attempt (15 min for power, 30 min for provisioning).
	TaskTimeout time.Duration
	// RetryBackoff is the delay before a retry-safe task's second attempt,
	// doubled for each further one. Default 1 s.
	RetryBackoff time.Duration
	// PowerStateTimeout is how long a power action may take to show in the
	// state the BMC reports, when the request gave no timeout (Ironic's
	// [conductor]power_state_change_timeout); past it the action failed.
	// Default 60 s.
	PowerStateTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s@%s:%d", "ferric", host, os.Getpid())
	}
	if o.SyncCallWorkers <= 0 {
		o.SyncCallWorkers = 8
	}
	if o.SyncCallTimeout <= 0 {
		o.SyncCallTimeout = 30 * time.Second
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.TaskLease <= 0 {
		o.TaskLease = 30 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = time.Second
	}
	if o.FastTrackTimeout <= 0 {
		o.FastTrackTimeout = 300 * time.Second
	}
	if o.CleanErase == "" {
		o.CleanErase = CleanEraseMetadata
	}
	if o.PowerStateTimeout <= 0 {
		o.PowerStateTimeout = 60 * time.Second
	}
	return o
}

// Conductor is the library both APIs and the conductor program use for every
// read and state change. It is safe for concurrent use.
type Conductor struct {
	db       *sqlx.DB
	drivers  *drivers.Registry
	log      *slog.Logger
	opts     Options
	now      func() time.Time
	syncPool chan struct{} // a slot per synchronous driver call in flight
}

// New returns a conductor over db using the enabled drivers of reg.
func New(db *sqlx.DB, reg *drivers.Registry, log *slog.Logger, opts Options) *Conductor {
	opts = opts.withDefaults()
	return &Conductor{
		db: db, drivers: reg, log: log, opts: opts, now: time.Now,
		syncPool: make(chan struct{}, opts.SyncCallWorkers),
	}
}

// Drivers returns the driver registry.
func (c *Conductor) Drivers() *drivers.Registry { return c.drivers }

// Name is the name this process holds locks and claims under.
func (c *Conductor) Name() string { return c.opts.Name }

func faultInvalidState(msg string) error { return fault.New(fault.Invalid, "%s", msg) }
