package conductor

import (
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// Options tune the conductor library's behaviour.
type Options struct {
	// FastTrack lets agents look up nodes that are enroll, manageable or
	// available (an agent already running on them), as Ironic's fast track.
	FastTrack bool
}

// Conductor is the library both APIs and the conductor program use for every
// read and state change. It is safe for concurrent use.
type Conductor struct {
	db      *sqlx.DB
	drivers *drivers.Registry
	log     *slog.Logger
	opts    Options
	now     func() time.Time
}

// New returns a conductor over db using the enabled drivers of reg.
func New(db *sqlx.DB, reg *drivers.Registry, log *slog.Logger, opts Options) *Conductor {
	return &Conductor{db: db, drivers: reg, log: log, opts: opts, now: time.Now}
}

// Drivers returns the driver registry.
func (c *Conductor) Drivers() *drivers.Registry { return c.drivers }

func faultInvalidState(msg string) error { return fault.New(fault.Invalid, "%s", msg) }
