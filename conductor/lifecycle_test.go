package conductor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// TestFakeNodeLifecycle walks a fake node through Ironic's whole life
// cycle. Each request must answer with the first transition and the target
// already committed; the conductor finishes the work.
func TestFakeNodeLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	n := e.node(c, "life", nil)
	ctx := context.Background()

	steps := []struct {
		verb, immediate, target, final string
	}{
		{"manage", conductor.StateVerifying, conductor.StateManageable, conductor.StateManageable},
		{"inspect", conductor.StateInspecting, conductor.StateManageable, conductor.StateManageable},
		{"provide", conductor.StateCleaning, conductor.StateAvailable, conductor.StateAvailable},
		{"active", conductor.StateDeploying, conductor.StateActive, conductor.StateActive},
		{"rebuild", conductor.StateDeploying, conductor.StateActive, conductor.StateActive},
		{"deleted", conductor.StateDeleting, conductor.StateAvailable, conductor.StateAvailable},
		{"manage", conductor.StateManageable, "", conductor.StateManageable},
		{"clean", conductor.StateCleaning, conductor.StateManageable, conductor.StateManageable},
	}
	for _, s := range steps {
		got, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: s.verb, User: "tester", CleanSteps: cleanSteps(s.verb)})
		if err != nil {
			t.Fatalf("%s: %v", s.verb, err)
		}
		if got.ProvisionState != s.immediate || deref(got.TargetProvisionState) != orNil(s.target) {
			t.Fatalf("%s answered %s -> %s, want %s -> %s already committed", s.verb, got.ProvisionState, deref(got.TargetProvisionState), s.immediate, orNil(s.target))
		}
		done := e.waitState(n.UUID, s.final)
		if done.TargetProvisionState != nil || done.LastError != nil {
			t.Fatalf("after %s: target %s, last_error %s", s.verb, deref(done.TargetProvisionState), deref(done.LastError))
		}
		if holder := done.LockHolder(done.CreatedAt.AddDate(100, 0, 0)); holder != "" {
			t.Fatalf("after %s the lock is still held by %s", s.verb, holder)
		}
	}
	final := e.get(n.UUID)
	if final.Properties["cpus"] != 8.0 || final.Properties["cpu_arch"] != "x86_64" {
		t.Errorf("inspection did not record properties: %v", final.Properties)
	}
	if deref(final.PowerState) != "power off" {
		t.Errorf("power after cleaning = %s, want power off", deref(final.PowerState))
	}
	history, _ := store.NodeHistory(ctx, e.db, n.ID)
	if len(history) < len(steps)*2 {
		t.Errorf("only %d history events for %d operations", len(history), len(steps))
	}
}

func cleanSteps(verb string) []any {
	if verb == "clean" {
		return []any{map[string]any{"interface": "deploy", "step": "erase_devices"}}
	}
	return nil
}

func orNil(s string) string {
	if s == "" {
		return "<nil>"
	}
	return s
}

// TestAgentDrivenDeploy: with fake_agent the deploy boots the agent and
// waits; the agent's callback resumes it to active.
func TestAgentDrivenDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	n := e.node(c, "agented", map[string]any{"fake_agent": true})
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = 'available' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "deploy"}); err != nil {
		t.Fatal(err)
	}
	waiting := e.waitState(n.UUID, conductor.StateWaitCallback)
	if deref(waiting.PowerState) != "power on" || deref(waiting.TargetProvisionState) != conductor.StateActive {
		t.Fatalf("waiting node: power %s target %s", deref(waiting.PowerState), deref(waiting.TargetProvisionState))
	}
	resumed, err := c.ResumeAgentWait(ctx, e.db, waiting)
	if err != nil || !resumed {
		t.Fatalf("ResumeAgentWait = %v, %v", resumed, err)
	}
	e.waitState(n.UUID, conductor.StateActive)
	// A callback for a node that waits for nothing changes nothing.
	active := e.get(n.UUID)
	if resumed, err := c.ResumeAgentWait(ctx, e.db, active); resumed || err != nil {
		t.Errorf("callback on an active node: %v, %v", resumed, err)
	}
}

// TestRefusedRequestsChangeNothing covers invalid transitions, bad verbs and
// missing conductors.
func TestRefusedRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	n := e.node(c, "idle", nil)
	ctx := context.Background()
	_, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "manage"})
	if fault.KindOf(err) != fault.Invalid || !strings.Contains(fault.Message(err), "No conductor") {
		t.Errorf("no conductor alive: %v", err)
	}
	e.register("c1")
	for _, req := range []conductor.ProvisionRequest{
		{Target: "deploy"},  // enroll cannot deploy
		{Target: "provide"}, // nor provide
		{Target: "fly"},     // not a verb
		{Target: "clean"},   // needs clean_steps, and manageable
		{Target: "manage", CleanSteps: []any{"x"}},
	} {
		if _, err := c.ChangeProvisionState(ctx, n.UUID, req); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%+v: %v, want invalid", req, err)
		}
	}
	if _, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power sideways"}); fault.KindOf(err) != fault.Invalid {
		t.Errorf("bad power target: %v", err)
	}
	if _, err := c.ChangeProvisionState(ctx, "nope", conductor.ProvisionRequest{Target: "manage"}); fault.KindOf(err) != fault.NotFound {
		t.Errorf("unknown node: %v", err)
	}
	got := e.get(n.UUID)
	var tasks int
	_ = e.db.Get(&tasks, `SELECT count(*) FROM tasks`)
	if got.ProvisionState != conductor.StateEnroll || got.TargetProvisionState != nil || got.TargetPowerState != nil || tasks != 0 {
		t.Errorf("refused requests wrote: state %s target %s power target %s tasks %d",
			got.ProvisionState, deref(got.TargetProvisionState), deref(got.TargetPowerState), tasks)
	}
}

// TestConcurrentRequestsOneWins fires the same request 20 times at once at
// one node: exactly one is accepted, and exactly one task exists.
func TestConcurrentRequestsOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.register("c1")
	n := e.node(c, "contended", nil)
	ctx := context.Background()
	for _, req := range []func() error{
		func() error {
			_, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "manage"})
			return err
		},
		func() error {
			_, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power on"})
			return err
		},
	} {
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch err := req(); {
				case err == nil:
					ok.Add(1)
				case fault.KindOf(err) == fault.Invalid || fault.KindOf(err) == fault.Conflict:
					refused.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 19 {
			t.Errorf("accepted %d, refused %d; want 1 and 19", ok.Load(), refused.Load())
		}
	}
	var tasks int
	_ = e.db.Get(&tasks, `SELECT count(*) FROM tasks WHERE node_id = $1`, n.ID)
	if tasks != 2 {
		t.Errorf("%d tasks queued, want one per accepted request (2)", tasks)
	}
}

// TestConcurrentDeploysOneWins: of two deploys of one node at once, exactly
// one is accepted (202); the other finds the node deploying (400) or locked
// (409).
func TestConcurrentDeploysOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.register("c1")
	n := e.node(c, "deployed-twice", map[string]any{"fake_agent": true})
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = 'available' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.ChangeProvisionState(context.Background(), n.UUID, conductor.ProvisionRequest{Target: "active"})
			errs <- err
		}()
	}
	var accepted int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			accepted++
		case fault.KindOf(err) == fault.Invalid || fault.KindOf(err) == fault.Locked || fault.KindOf(err) == fault.Conflict:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	var tasks int
	_ = e.db.Get(&tasks, `SELECT count(*) FROM tasks WHERE node_id = $1`, n.ID)
	if accepted != 1 || tasks != 1 {
		t.Errorf("%d deploys accepted, %d tasks queued; want exactly one of each", accepted, tasks)
	}
}

// TestHeldLockIsConflict: while a task holds the node, requests get 409 at
// once naming the holder.
func TestHeldLockIsConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.register("c1")
	n := e.node(c, "held", nil)
	ctx := context.Background()
	if _, err := store.AcquireNodeLock(ctx, e.db, n.ID, "conductor-x", time10s); err != nil {
		t.Fatal(err)
	}
	_, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power on"})
	if fault.KindOf(err) != fault.Locked || !strings.Contains(fault.Message(err), "conductor-x") {
		t.Errorf("power on a locked node: %v", err)
	}
	_, err = c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "manage"})
	if fault.KindOf(err) != fault.Locked {
		t.Errorf("manage a locked node: %v", err)
	}
	if !errors.Is(err, fault.ErrLocked) {
		t.Errorf("errors.Is(ErrLocked) false for %v", err)
	}
}
