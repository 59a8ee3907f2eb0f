package conductor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// TestTasksRunExactlyOnceAcrossConductors: two conductors share one queue
// of 60 power tasks; every task runs exactly once, and never two actions at
// once on one node.
func TestTasksRunExactlyOnceAcrossConductors(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(20 * time.Millisecond)
	e := newEnv(t, drv)
	c1, c2 := e.conductor("c1"), e.conductor("c2")
	ctx := context.Background()
	var uuids []string
	for i := range 60 {
		n, err := c1.CreateNode(ctx, conductor.NodeSpec{Name: ptr(fmt.Sprintf("n%02d", i)), Driver: "counting"})
		if err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, n.UUID)
	}
	e.register("c1")
	for _, u := range uuids {
		if _, err := c1.ChangePowerState(ctx, u, conductor.PowerRequest{Target: "power on"}); err != nil {
			t.Fatal(err)
		}
	}
	e.start(c1, conductor.PeriodicConfig{})
	e.start(c2, conductor.PeriodicConfig{})
	e.waitFor(20*time.Second, "all power tasks done", func() bool {
		var pending int
		_ = e.db.Get(&pending, `SELECT count(*) FROM tasks WHERE state <> 'done'`)
		return pending == 0
	})
	sets, _ := drv.counts()
	for _, u := range uuids {
		if sets[u] != 1 {
			t.Errorf("node %s powered %d times, want 1", u, sets[u])
		}
		if n := e.get(u); deref(n.PowerState) != "power on" || n.TargetPowerState != nil {
			t.Errorf("node %s: power %s target %s", u, deref(n.PowerState), deref(n.TargetPowerState))
		}
	}
	if o := drv.overlaps.Load(); o != 0 {
		t.Errorf("%d overlapping calls on one node", o)
	}
	var owners []string
	_ = e.db.Select(&owners, `SELECT DISTINCT owner FROM tasks ORDER BY owner`)
	var attempts int
	_ = e.db.Get(&attempts, `SELECT max(attempt) FROM tasks`)
	if attempts != 1 {
		t.Errorf("some task ran %d times", attempts)
	}
	t.Logf("tasks were run by %v", owners)
}

func ptr(s string) *string { return &s }

// TestFullQueueAnswersUnavailable: beyond the pool's queue limit, requests
// are refused at once and write nothing.
func TestFullQueueAnswersUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1", func(o *conductor.Options) { o.QueueLimits = map[string]int{conductor.PoolOperator: 3} })
	e.register("c1")
	ctx := context.Background()
	var refused *store.Node
	for i := range 4 {
		n := e.node(c, fmt.Sprintf("q%d", i), nil)
		_, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power on"})
		if i < 3 && err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 3 {
			if fault.KindOf(err) != fault.Unavailable {
				t.Fatalf("request beyond the limit: %v, want unavailable", err)
			}
			refused = e.get(n.UUID)
		}
	}
	if refused.TargetPowerState != nil {
		t.Errorf("refused request left target_power_state %s", *refused.TargetPowerState)
	}
}

// TestSyncPoolFull: synchronous driver calls beyond the pool get 503 at
// once rather than queueing behind a slow BMC.
func TestSyncPoolFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1", func(o *conductor.Options) { o.SyncCallWorkers = 1 })
	n := e.node(c, "slow", map[string]any{"fake_latency": "500ms"})
	ctx := context.Background()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.GetBootDevice(ctx, n.UUID)
			errs <- err
		}()
	}
	got := []error{<-errs, <-errs}
	unavailable := 0
	for _, err := range got {
		if fault.KindOf(err) == fault.Unavailable {
			unavailable++
		} else if err != nil {
			t.Errorf("unexpected: %v", err)
		}
	}
	if unavailable != 1 {
		t.Errorf("%d calls refused, want exactly 1: %v", unavailable, got)
	}
}

// TestSyncCallDeadline: a hung BMC on a synchronous call times out, and
// the node lock taken for it is released.
func TestSyncCallDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1", func(o *conductor.Options) { o.SyncCallTimeout = 200 * time.Millisecond })
	n := e.node(c, "hung", map[string]any{"fake_latency": "1h"})
	start := time.Now()
	err := c.SetBootDevice(context.Background(), n.UUID, "pxe", false)
	if fault.KindOf(err) != fault.Unavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("set boot device on a hung BMC: %v after %s", err, time.Since(start))
	}
	if holder := e.get(n.UUID).LockHolder(time.Now()); holder != "" {
		t.Errorf("lock still held by %s after the call gave up", holder)
	}
}

// TestHungBMCInTask: a power task whose BMC hangs hits its deadline, is
// retried, then gives up: the node gets last_error, its target is cleared
// and its lock released.
func TestHungBMCInTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1", func(o *conductor.Options) { o.TaskTimeout = 300 * time.Millisecond })
	e.start(c, conductor.PeriodicConfig{})
	n := e.node(c, "hung", map[string]any{"fake_latency": "1h"})
	if _, err := c.ChangePowerState(context.Background(), n.UUID, conductor.PowerRequest{Target: "power on"}); err != nil {
		t.Fatal(err)
	}
	var got *store.Node
	e.waitFor(15*time.Second, "power task given up", func() bool {
		got = e.get(n.UUID)
		return got.LastError != nil
	})
	if got.TargetPowerState != nil || got.LockHolder(time.Now()) != "" || !strings.Contains(*got.LastError, "Power action failed") {
		t.Errorf("after a hung BMC: target %s holder %q last_error %s", deref(got.TargetPowerState), got.LockHolder(time.Now()), deref(got.LastError))
	}
	var attempts int
	_ = e.db.Get(&attempts, `SELECT attempt FROM tasks WHERE node_id = $1`, n.ID)
	if attempts != 3 {
		t.Errorf("%d attempts, want 3 (power actions are retried)", attempts)
	}
}

// TestVendorPassthru covers synchronous and asynchronous methods and the
// refusals.
func TestVendorPassthru(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.register("c1")
	n := e.node(c, "vendor", nil)
	ctx := context.Background()

	res, err := c.NodeVendorPassthru(ctx, n.UUID, "echo", "POST", json.RawMessage(`{"hello": "world"}`), "tester")
	if err != nil || res.Async {
		t.Fatalf("echo: %+v %v", res, err)
	}
	if b, _ := json.Marshal(res.Result); string(b) != `{"hello":"world"}` {
		t.Errorf("echo answered %s", b)
	}
	res, err = c.NodeVendorPassthru(ctx, n.UUID, "slow", "POST", json.RawMessage(`{}`), "tester")
	if err != nil || !res.Async {
		t.Fatalf("slow: %+v %v", res, err)
	}
	var queued int
	_ = e.db.Get(&queued, `SELECT count(*) FROM tasks WHERE kind = 'vendor' AND node_id = $1`, n.ID)
	if queued != 1 {
		t.Errorf("%d vendor tasks queued", queued)
	}
	for _, tc := range []struct{ method, verb string }{{"nope", "POST"}, {"slow", "GET"}, {"", "POST"}} {
		if _, err := c.NodeVendorPassthru(ctx, n.UUID, tc.method, tc.verb, nil, ""); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%s %s: %v, want invalid", tc.verb, tc.method, err)
		}
	}
	if _, err := store.AcquireNodeLock(ctx, e.db, n.ID, "other", time10s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NodeVendorPassthru(ctx, n.UUID, "slow", "POST", nil, ""); fault.KindOf(err) != fault.Locked {
		t.Errorf("async passthru on a locked node: %v", err)
	}
	methods, err := c.NodeVendorMethods(ctx, n.UUID)
	if err != nil || len(methods) != 2 {
		t.Errorf("methods: %v %v", methods, err)
	}
	if _, err := c.DriverVendorPassthru(ctx, "fake", "anything", "POST", nil); fault.KindOf(err) != fault.Invalid {
		t.Errorf("driver passthru without methods: %v", err)
	}
}

// TestAsyncPassthruRunsUnderLock: the queued method runs as a task that
// takes the node's lock (its fencing token moves) and releases it.
func TestAsyncPassthruRunsUnderLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	n := e.node(c, "vendor", map[string]any{"fake_latency": "100ms"})
	if _, err := c.NodeVendorPassthru(context.Background(), n.UUID, "slow", "POST", nil, ""); err != nil {
		t.Fatal(err)
	}
	e.waitFor(10*time.Second, "vendor task done", func() bool {
		var state string
		_ = e.db.Get(&state, `SELECT state FROM tasks WHERE node_id = $1`, n.ID)
		return state == store.TaskDone
	})
	got := e.get(n.UUID)
	if got.LockToken != n.LockToken+1 || got.LockHolder(time.Now()) != "" {
		t.Errorf("lock token %d (was %d), holder %q: the task did not take and release the lock once", got.LockToken, n.LockToken, got.LockHolder(time.Now()))
	}
}
