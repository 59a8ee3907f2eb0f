package conductor_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/fake"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a database with drivers, on which tests run conductors.
type env struct {
	t   *testing.T
	db  *sqlx.DB
	reg *drivers.Registry
}

func newEnv(t *testing.T, extra ...drivers.Driver) *env {
	t.Helper()
	reg := drivers.NewRegistry(append([]drivers.Driver{fake.New()}, extra...)...)
	names := []string{"fake"}
	for _, d := range extra {
		names = append(names, d.Name())
	}
	if err := reg.Enable(names); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: pgtest.NewDB(t), reg: reg}
}

// conductor returns a conductor library instance with short leases, so
// failure handling is observable within a test.
func (e *env) conductor(name string, tweak ...func(*conductor.Options)) *conductor.Conductor {
	opts := conductor.Options{Name: name, LockTTL: 2 * time.Second, TaskLease: 2 * time.Second, RetryBackoff: 20 * time.Millisecond}
	for _, f := range tweak {
		f(&opts)
	}
	return conductor.New(e.db, e.reg, quiet, opts)
}

// start runs c's workers and periodic work until the test ends.
func (e *env) start(c *conductor.Conductor, periodic conductor.PeriodicConfig) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = c.RunWorkers(ctx, conductor.WorkerConfig{
			Pools:        map[string]int{conductor.PoolOperator: 4, conductor.PoolAgent: 4},
			PollInterval: 10 * time.Millisecond, Grace: 5 * time.Second,
		})
	}()
	go func() {
		defer wg.Done()
		if periodic.CheckInterval == 0 {
			periodic.CheckInterval = 100 * time.Millisecond
		}
		_ = c.RunPeriodic(ctx, periodic)
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	e.waitFor(5*time.Second, "conductor registered", func() bool {
		var n int
		_ = e.db.Get(&n, `SELECT count(*) FROM conductors WHERE name = $1`, c.Name())
		return n == 1
	})
}

// register makes a conductor serving the fake driver look alive, without
// running one, so requests are accepted and their tasks stay queued.
func (e *env) register(name string) {
	e.t.Helper()
	if err := store.RegisterConductor(context.Background(), e.db, name, e.reg.EnabledNames(), ""); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) node(c *conductor.Conductor, name string, info map[string]any) *store.Node {
	e.t.Helper()
	n, err := c.CreateNode(context.Background(), conductor.NodeSpec{Name: &name, Driver: "fake", DriverInfo: info})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) get(uuid string) *store.Node {
	e.t.Helper()
	n, err := store.GetNodeByUUID(context.Background(), e.db, uuid)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) waitFor(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting for: %s", timeout, what)
}

// waitState waits until the node is in state with no target left.
func (e *env) waitState(uuid, state string) *store.Node {
	e.t.Helper()
	var n *store.Node
	e.waitFor(10*time.Second, "node "+uuid+" in "+state, func() bool {
		n = e.get(uuid)
		return n.ProvisionState == state
	})
	return n
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
