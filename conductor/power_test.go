package conductor_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
	"github.com/ferric-metal/ferric/shared/fault"
)

// TestPowerRequestWaitsForBusyNode: a power off asked for a moment after a
// reboot, while the reboot is still under way, waits for it (as Ironic's
// lock retries do) and is then accepted, instead of 409.
func TestPowerRequestWaitsForBusyNode(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(300 * time.Millisecond)
	e := newEnv(t, drv)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	ctx := context.Background()
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("rebooted"), Driver: "counting", InitialState: conductor.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "rebooting"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power off"}); err != nil {
		t.Fatalf("power off just after a reboot: %v, want it accepted once the reboot is done", err)
	}
	e.waitFor(10*time.Second, "power off done", func() bool {
		got := e.get(n.UUID)
		return got.TargetPowerState == nil && deref(got.PowerState) == "power off"
	})
	if changes := drv.changesOf(n.UUID); !slices.Equal(changes, []string{"rebooting", "power off"}) {
		t.Errorf("changes %v, want the reboot then the power off", changes)
	}
}

// TestPowerRequestRefusedWhileStillBusy: a node whose power change does not
// end within the retries is refused with 409 (Conflict), as Ironic's
// NodeLocked after its last try.
func TestPowerRequestRefusedWhileStillBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.register("c1") // accepts requests; nothing runs them
	ctx := context.Background()
	n := e.node(c, "pending", nil)
	if _, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power on"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: string(drivers.ActionPowerOff)})
	if fault.KindOf(err) != fault.Conflict {
		t.Errorf("power off while power on is still pending: %v, want Conflict", err)
	}
}

// slowBMC is a Redfish BMC that applies a power change delay after the
// Reset request, as sushy-tools and many real BMCs do.
func slowBMC(t *testing.T, delay time.Duration) (*redfishsim.Simulator, map[string]any) {
	t.Helper()
	sim := redfishsim.New(redfishsim.Options{PowerDelay: delay})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { sim.Close(); srv.Close() })
	return sim, map[string]any{"redfish_address": srv.URL, "redfish_system_id": "1",
		"redfish_username": "admin", "redfish_password": "password"}
}

// TestPowerWaitsForTheBMC: a BMC that applies power changes 1.5 s after the
// Reset: the power task waits for the target state, so the node's
// power_state is the BMC's new one when the task ends, not the stale one.
func TestPowerWaitsForTheBMC(t *testing.T) {
	t.Parallel()
	rf := redfish.New()
	t.Cleanup(func() { _ = rf.Close() })
	e := newEnv(t, rf)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	ctx := context.Background()
	sim, info := slowBMC(t, 1500*time.Millisecond)
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("slow"), Driver: "redfish", DriverInfo: info, InitialState: conductor.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ target, bmc string }{{"power on", "On"}, {"power off", "Off"}} {
		if _, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: tc.target}); err != nil {
			t.Fatal(err)
		}
		var got *store.Node
		e.waitFor(20*time.Second, tc.target+" task done", func() bool {
			got = e.get(n.UUID)
			return got.TargetPowerState == nil
		})
		if deref(got.PowerState) != tc.target || got.LastError != nil {
			t.Errorf("%s: recorded %s (last_error %s); want %s", tc.target, deref(got.PowerState), deref(got.LastError), tc.target)
		}
		if p := sim.PowerState("1"); p != tc.bmc {
			t.Errorf("%s: the BMC is %s", tc.target, p)
		}
	}
}

// TestPowerNeverReachedIsAnError: a BMC that accepts a Reset but does not
// apply it within the power timeout: the node keeps the state the BMC
// reports and gets a last_error that says so.
func TestPowerNeverReachedIsAnError(t *testing.T) {
	t.Parallel()
	rf := redfish.New()
	t.Cleanup(func() { _ = rf.Close() })
	e := newEnv(t, rf)
	c := e.conductor("c1", func(o *conductor.Options) { o.PowerStateTimeout = time.Second })
	e.start(c, conductor.PeriodicConfig{})
	ctx := context.Background()
	_, info := slowBMC(t, time.Hour)
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("stuck"), Driver: "redfish", DriverInfo: info, InitialState: conductor.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: "power on"}); err != nil {
		t.Fatal(err)
	}
	var got *store.Node
	e.waitFor(20*time.Second, "power task ended", func() bool {
		got = e.get(n.UUID)
		return got.TargetPowerState == nil
	})
	if deref(got.PowerState) != "power off" || !strings.Contains(deref(got.LastError), "did not reach power on within 1s") {
		t.Errorf("recorded %s, last_error %q; want power off and a last_error saying the node never reached power on", deref(got.PowerState), deref(got.LastError))
	}
	var attempts int
	_ = e.db.Get(&attempts, `SELECT attempt FROM tasks WHERE node_id = $1`, n.ID)
	if attempts != 1 {
		t.Errorf("%d attempts: an action the BMC took is not made again", attempts)
	}
}

// TestInterruptedPowerActionIsNotRepeated: a conductor that dies after
// calling the BMC for a reboot (the call recorded on its task) leaves a task
// that the next conductor takes over: it reads the power state instead of
// rebooting again, as Ironic never re-runs an interrupted power action. One
// that died before the call makes it.
func TestInterruptedPowerActionIsNotRepeated(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	ctx := context.Background()
	dead := e.conductor("dead")
	e.register("dead")
	mk := func(name, target string) *store.Node {
		n, err := dead.CreateNode(ctx, conductor.NodeSpec{Name: ptr(name), Driver: "counting", InitialState: conductor.StateAvailable})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dead.ChangePowerState(ctx, n.UUID, conductor.PowerRequest{Target: target}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	called, cameBack, notCalled := mk("called", "rebooting"), mk("came-back-off", "rebooting"), mk("not-called", "rebooting")
	// The dead conductor claimed all three (leases of a millisecond) and
	// recorded its BMC call for the first two; the BMC rebooted the first,
	// and left the second off.
	tasks, err := store.ClaimTasks(ctx, e.db, conductor.PoolOperator, "dead", e.reg.EnabledNames(), 10, time.Millisecond)
	if err != nil || len(tasks) != 3 {
		t.Fatalf("claimed %d tasks: %v", len(tasks), err)
	}
	for _, task := range tasks {
		if *task.NodeID != notCalled.ID {
			if err := store.MarkDriverCall(ctx, e.db, task.ID, task.ClaimToken); err != nil {
				t.Fatal(err)
			}
		}
	}
	drv.setPower(called.UUID, drivers.PowerOn)
	drv.setPower(cameBack.UUID, drivers.PowerOff)

	c := e.conductor("c1", func(o *conductor.Options) { o.PowerStateTimeout = 500 * time.Millisecond })
	e.start(c, conductor.PeriodicConfig{})
	for _, n := range []*store.Node{called, cameBack, notCalled} {
		e.waitFor(15*time.Second, deref(n.Name)+" recovered", func() bool { return e.get(n.UUID).TargetPowerState == nil })
	}
	sets, _ := drv.counts()
	if sets[called.UUID] != 0 || sets[cameBack.UUID] != 0 {
		t.Errorf("interrupted reboots made again: %d and %d calls, want none", sets[called.UUID], sets[cameBack.UUID])
	}
	if sets[notCalled.UUID] != 1 {
		t.Errorf("a reboot interrupted before its call was made %d times, want once", sets[notCalled.UUID])
	}
	if got := e.get(called.UUID); deref(got.PowerState) != "power on" || got.LastError != nil {
		t.Errorf("interrupted reboot the BMC did: %s, last_error %s", deref(got.PowerState), deref(got.LastError))
	}
	got := e.get(cameBack.UUID)
	if deref(got.PowerState) != "power off" || !strings.Contains(deref(got.LastError), "aborted due to conductor take over") {
		t.Errorf("interrupted reboot that left the node off: %s, last_error %q", deref(got.PowerState), deref(got.LastError))
	}
}
