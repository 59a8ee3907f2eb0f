package redfish

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

func TestPowerStateReadsTheBMC(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	n := b.node(nil)
	ctx := ctxWithTimeout(t, 5*time.Second)

	for _, c := range []struct {
		sim  string
		want drivers.PowerState
	}{{"Off", drivers.PowerOff}, {"On", drivers.PowerOn}, {"Off", drivers.PowerOff}} {
		b.sim.SetPowerState("1", c.sim)
		got, err := d.PowerState(ctx, n)
		if err != nil || got != c.want {
			t.Fatalf("BMC %s: PowerState = %q, %v; want %q", c.sim, got, err, c.want)
		}
	}
	if got := b.sim.RequestCount("GET", "/redfish/v1/Systems/1"); got != 3 {
		t.Fatalf("with redfish_system_id set, one GET per read; got %d (%v)", got, b.sim.Routes())
	}
}

func TestPowerStateTransitionsMapLikeIronic(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{PowerDelay: time.Hour, TransitionStates: true})
	d, _ := newDriver(t, Options{})
	n := b.node(nil)
	ctx := ctxWithTimeout(t, 5*time.Second)

	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
		t.Fatal(err)
	}
	if b.sim.PowerState("1") != "PoweringOn" {
		t.Fatalf("set-up: %s", b.sim.PowerState("1"))
	}
	if got, err := d.PowerState(ctx, n); err != nil || got != drivers.PowerOn {
		t.Fatalf("PoweringOn: %q, %v", got, err)
	}
	// Idempotent while powering on: no second reset.
	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
		t.Fatal(err)
	}
	if got := b.sim.ResetHistory("1"); !slices.Equal(got, []string{"On"}) {
		t.Fatalf("resets %v", got)
	}
}

// TestSetPowerStateActions runs every action from both states and checks
// the reset the BMC received and where the system ended up.
func TestSetPowerStateActions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		resetTypes []string // nil: the simulator's default list
		omit       bool     // no AllowableValues annotation
		from       string
		action     drivers.PowerAction
		wantResets []string
		wantPower  string
		wantBoots  int
	}{
		{"on from off", nil, false, "Off", drivers.ActionPowerOn, []string{"On"}, "On", 1},
		{"on when on", nil, false, "On", drivers.ActionPowerOn, nil, "On", 0},
		{"on by ForceOn", []string{"ForceOn", "ForceOff"}, false, "Off", drivers.ActionPowerOn, []string{"ForceOn"}, "On", 1},
		{"on by button", []string{"PushPowerButton"}, false, "Off", drivers.ActionPowerOn, []string{"PushPowerButton"}, "On", 1},
		{"off from on", nil, false, "On", drivers.ActionPowerOff, []string{"ForceOff"}, "Off", 0},
		{"off when off", nil, false, "Off", drivers.ActionPowerOff, nil, "Off", 0},
		{"reboot", nil, false, "On", drivers.ActionReboot, []string{"ForceRestart"}, "On", 1},
		{"reboot by PowerCycle", []string{"On", "ForceOff", "PowerCycle"}, false, "On", drivers.ActionReboot, []string{"PowerCycle"}, "On", 1},
		{"reboot by off and on", []string{"On", "ForceOff"}, false, "On", drivers.ActionReboot, []string{"ForceOff", "On"}, "On", 1},
		{"reboot when off powers on", nil, false, "Off", drivers.ActionReboot, []string{"On"}, "On", 1},
		{"soft off", nil, false, "On", drivers.ActionSoftPowerOff, []string{"GracefulShutdown"}, "Off", 0},
		{"soft off when off", nil, false, "Off", drivers.ActionSoftPowerOff, nil, "Off", 0},
		{"soft reboot", nil, false, "On", drivers.ActionSoftReboot, []string{"GracefulRestart"}, "On", 1},
		{"soft reboot by shutdown and on", []string{"On", "GracefulShutdown"}, false, "On", drivers.ActionSoftReboot, []string{"GracefulShutdown", "On"}, "On", 1},
		{"soft reboot when off powers on", nil, false, "Off", drivers.ActionSoftReboot, []string{"On"}, "On", 1},
		{"no annotation: standard types", nil, true, "On", drivers.ActionPowerOff, []string{"ForceOff"}, "Off", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := newBMC(t, redfishsim.Options{InitialPower: c.from, ResetTypes: c.resetTypes, OmitAllowableValues: c.omit})
			d, _ := newDriver(t, Options{})
			if err := d.SetPowerState(ctxWithTimeout(t, 5*time.Second), b.node(nil), c.action, 0); err != nil {
				t.Fatalf("SetPowerState: %v", err)
			}
			if got := b.sim.ResetHistory("1"); !slices.Equal(got, c.wantResets) {
				t.Errorf("resets %v, want %v", got, c.wantResets)
			}
			if got := b.sim.PowerState("1"); got != c.wantPower {
				t.Errorf("power %s, want %s", got, c.wantPower)
			}
			if got := len(b.sim.Boots("1")); got != c.wantBoots {
				t.Errorf("%d boots, want %d", got, c.wantBoots)
			}
		})
	}
}

func TestSoftPowerOffWaitsUntilOff(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{InitialPower: "On", PowerDelay: 150 * time.Millisecond})
	d, _ := newDriver(t, Options{})
	began := time.Now()
	if err := d.SetPowerState(ctxWithTimeout(t, 5*time.Second), b.node(nil), drivers.ActionSoftPowerOff, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Fatalf("returned after %v, before the node was off", took)
	}
	if b.sim.PowerState("1") != "Off" {
		t.Fatalf("power %s after soft power off returned", b.sim.PowerState("1"))
	}
}

func TestRebootWithoutRestartWaitsForOffBeforeOn(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{InitialPower: "On", PowerDelay: 100 * time.Millisecond, ResetTypes: []string{"On", "ForceOff"}})
	d, _ := newDriver(t, Options{})
	if err := d.SetPowerState(ctxWithTimeout(t, 5*time.Second), b.node(nil), drivers.ActionReboot, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := b.sim.ResetHistory("1"); !slices.Equal(got, []string{"ForceOff", "On"}) {
		t.Fatalf("resets %v", got)
	}
	time.Sleep(150 * time.Millisecond) // the On is delayed too
	if b.sim.PowerState("1") != "On" || len(b.sim.Boots("1")) != 1 {
		t.Fatalf("power %s, boots %v", b.sim.PowerState("1"), b.sim.Boots("1"))
	}
}

func TestSoftPowerOffTimesOut(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{InitialPower: "On", IgnoreGraceful: true})
	d, _ := newDriver(t, Options{})
	began := time.Now()
	err := d.SetPowerState(ctxWithTimeout(t, 5*time.Second), b.node(nil), drivers.ActionSoftPowerOff, 200*time.Millisecond)
	assertCleanError(t, err, `set power "soft power off"`)
	if !errors.Is(err, errPowerTimeout) || !strings.Contains(err.Error(), "still On after 200ms") {
		t.Fatalf("want the power timeout, got %v", err)
	}
	if took := time.Since(began); took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("took %v for a 200ms timeout", took)
	}
}

func TestSoftPowerOffStopsAtTheContextDeadline(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{InitialPower: "On", IgnoreGraceful: true})
	d, _ := newDriver(t, Options{})
	began := time.Now()
	err := d.SetPowerState(ctxWithTimeout(t, 300*time.Millisecond), b.node(nil), drivers.ActionSoftPowerOff, time.Hour)
	assertCleanError(t, err, `set power "soft power off"`)
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("took %v past a 300ms deadline", took)
	}
}

func TestDisallowedResetIsNotSupported(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{InitialPower: "On", ResetTypes: []string{"On", "Nmi"}})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)
	for _, action := range []drivers.PowerAction{drivers.ActionPowerOff, drivers.ActionSoftPowerOff, drivers.ActionReboot, drivers.ActionSoftReboot} {
		err := d.SetPowerState(ctx, b.node(nil), action, 0)
		assertCleanError(t, err, `set power "`+string(action)+`"`)
		wantNotSupported(t, err)
		if !strings.Contains(err.Error(), "the BMC allows reset types On, Nmi") {
			t.Fatalf("error does not list the allowed types: %v", err)
		}
	}
	if got := b.sim.RequestCount("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"); got != 0 {
		t.Fatalf("%d resets sent for unsupported actions", got)
	}
	if b.sim.PowerState("1") != "On" {
		t.Fatal("power changed")
	}
}

func TestUnknownPowerActionNeedsNoNetwork(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	err := d.SetPowerState(ctxWithTimeout(t, 5*time.Second), b.node(nil), "hibernate", 0)
	assertCleanError(t, err, `set power "hibernate"`)
	wantNotSupported(t, err)
	if b.sim.Requests() != 0 {
		t.Fatalf("%d requests for an unknown action", b.sim.Requests())
	}
}

func TestSystemDiscovery(t *testing.T) {
	t.Parallel()
	ctx := ctxWithTimeout(t, 5*time.Second)
	one := newBMC(t, redfishsim.Options{InitialPower: "On"})
	d, _ := newDriver(t, Options{})
	if got, err := d.PowerState(ctx, one.node(map[string]any{keySystemID: nil})); err != nil || got != drivers.PowerOn {
		t.Fatalf("single system, no id: %q, %v", got, err)
	}

	two := newBMC(t, redfishsim.Options{Systems: 2})
	_, err := d.PowerState(ctx, two.node(map[string]any{keySystemID: nil}))
	assertCleanError(t, err, "read power state")
	var ie *drivers.InfoError
	if !errors.As(err, &ie) || ie.Key != keySystemID || !strings.Contains(ie.Reason, "2 systems") {
		t.Fatalf("two systems, no id: %v", err)
	}
	for _, id := range []string{"2", "/redfish/v1/Systems/2"} {
		if err := d.SetPowerState(ctx, two.node(map[string]any{keySystemID: id}), drivers.ActionPowerOn, 0); err != nil {
			t.Fatalf("system %s: %v", id, err)
		}
		if two.sim.PowerState("2") != "On" || two.sim.PowerState("1") != "Off" {
			t.Fatalf("system %s: the wrong system changed", id)
		}
		two.sim.SetPowerState("2", "Off")
	}
	_, err = d.PowerState(ctx, two.node(map[string]any{keySystemID: "7"}))
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("unknown system: %v", err)
	}
}
