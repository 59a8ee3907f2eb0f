package ipmi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
)

func TestPowerStateReadsBMC(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	ctx := timeout(t, 10*time.Second)

	if got, err := d.PowerState(ctx, n); err != nil || got != drivers.PowerOff {
		t.Fatalf("fresh BMC: got %q, %v; want power off", got, err)
	}
	sim.SetState("power", "1") // the node was switched on behind our back
	if got, err := d.PowerState(ctx, n); err != nil || got != drivers.PowerOn {
		t.Fatalf("after power file = 1: got %q, %v; want power on", got, err)
	}
}

func TestPowerOnAndOff(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	ctx := timeout(t, 10*time.Second)

	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("power"); got != "1" {
		t.Fatalf("after power on, power file = %q, want 1", got)
	}
	if got, err := d.PowerState(ctx, n); err != nil || got != drivers.PowerOn {
		t.Fatalf("PowerState after power on = %q, %v", got, err)
	}

	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOff, 0); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("power"); got != "0" {
		t.Fatalf("after power off, power file = %q, want 0", got)
	}
	if c := countCalls(sim, "set power"); c != 2 {
		t.Errorf("%d power changes reached the BMC, want 2: %q", c, sim.Calls())
	}
}

func TestPowerActionsAreIdempotent(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	ctx := timeout(t, 10*time.Second)

	sim.SetState("power", "1")
	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
		t.Fatalf("power on when on: %v", err)
	}
	sim.SetState("power", "0")
	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOff, 0); err != nil {
		t.Fatalf("power off when off: %v", err)
	}
	if err := d.SetPowerState(ctx, n, drivers.ActionSoftPowerOff, 0); err != nil {
		t.Fatalf("soft power off when off: %v", err)
	}
	// Each action read the state and, finding it reached, sent nothing.
	if c := countCalls(sim, " set "); c != 0 {
		t.Errorf("no chassis change should reach the BMC, got %q", sim.Calls())
	}
}

func TestRebootWhenOnResets(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	sim.SetState("power", "1")

	if err := d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionReboot, 0); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("resets"); got != "1" {
		t.Errorf("resets = %q, want 1 (one hard reset)", got)
	}
	if got := sim.State("power"); got != "1" {
		t.Errorf("power = %q after reboot, want 1", got)
	}
}

func TestRebootWhenOffPowersOn(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()

	if err := d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionReboot, 0); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("power"); got != "1" {
		t.Errorf("power = %q after reboot from off, want 1", got)
	}
	if got := sim.State("resets"); got != "" {
		t.Errorf("resets = %q, want no reset of an off node", got)
	}
}

func TestSoftPowerOff(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()
	sim.SetState("power", "1")

	if err := d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionSoftPowerOff, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("power"); got != "0" {
		t.Errorf("power = %q after soft power off, want 0", got)
	}
	if countCalls(sim, "set shutdown") != 1 || countCalls(sim, "set power") != 0 {
		t.Errorf("want one soft shutdown and no hard power change, got %q", sim.Calls())
	}
}

func TestSoftPowerOffWaitsForTheOS(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()
	sim.SetState("power", "1")
	sim.SetState("ignore_shutdown", "") // the OS takes its time

	const osDelay = 400 * time.Millisecond
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionSoftPowerOff, 5*time.Second)
	}()

	// Play the OS: once the request arrived, shut down a little later.
	for countCalls(sim, "set shutdown") == 0 {
		select {
		case err := <-done:
			t.Fatalf("returned before the node was off: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(osDelay)
	sim.SetState("power", "0")

	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < osDelay {
		t.Errorf("returned after %s, before the node was off", took)
	}
}

func TestSoftPowerOffTimesOut(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()
	sim.SetState("power", "1")
	sim.SetState("ignore_shutdown", "")

	const soft = 500 * time.Millisecond
	_, err := within(t, soft+2*time.Second, func() error {
		return d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionSoftPowerOff, soft)
	})
	checkError(t, err, n, "soft power off")
	if !strings.Contains(err.Error(), "still powered on") {
		t.Errorf("error should say the node is still on: %v", err)
	}
	if got := sim.State("power"); got != "1" {
		t.Errorf("power = %q; a soft power off must never force the node off", got)
	}
}

func TestSoftPowerOffHonoursContextDeadline(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()
	sim.SetState("power", "1")
	sim.SetState("ignore_shutdown", "")

	_, err := within(t, 2*time.Second, func() error {
		return d.SetPowerState(timeout(t, 600*time.Millisecond), n, drivers.ActionSoftPowerOff, time.Hour)
	})
	checkError(t, err, n, "soft power off")
	if !isDeadline(err) {
		t.Errorf("want context.DeadlineExceeded, got %v", err)
	}
}

func TestSoftReboot(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()
	sim.SetState("power", "1")

	if err := d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionSoftReboot, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("power"); got != "1" {
		t.Errorf("power = %q after soft reboot, want 1", got)
	}
	// Order matters: the OS shut down, then the node was powered on.
	calls := strings.Join(sim.Calls(), "\n")
	shutdown, on := strings.Index(calls, "set shutdown"), strings.LastIndex(calls, "set power 1")
	if shutdown < 0 || on < shutdown {
		t.Errorf("want soft shutdown then power on, got %q", sim.Calls())
	}
}

func TestSoftRebootWhenOffPowersOn(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()

	if err := d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionSoftReboot, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := sim.State("power"); got != "1" || countCalls(sim, "set shutdown") != 0 {
		t.Errorf("power = %q, calls %q; want powered on without a shutdown", got, sim.Calls())
	}
}

func TestSoftRebootDoesNotPowerOnWhenShutdownTimesOut(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := newTestDriver()
	sim.SetState("power", "1")
	sim.SetState("ignore_shutdown", "")

	err := d.SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionSoftReboot, 300*time.Millisecond)
	checkError(t, err, n, "soft rebooting")
	if c := countCalls(sim, "set power"); c != 0 {
		t.Errorf("no hard power change expected, got %q", sim.Calls())
	}
}

func TestUnknownPowerActionNotSupported(t *testing.T) {
	t.Parallel()
	n := drivers.Node{UUID: "u", Name: "n", DriverInfo: map[string]any{"ipmi_address": "192.0.2.1"}}
	err := New().SetPowerState(t.Context(), n, drivers.PowerAction("nmi"), 0)
	if !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("want ErrNotSupported, got %v", err)
	}
	checkError(t, err, n, "nmi")
}

func TestConcurrentOperationsOnOneBMC(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	sim.SetState("power", "1")
	ctx := timeout(t, 20*time.Second)

	// More callers than sessionsPerBMC: the rest wait for a slot.
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			st, err := d.PowerState(ctx, n)
			if err == nil && st != drivers.PowerOn {
				err = errors.New("wrong state " + string(st))
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
