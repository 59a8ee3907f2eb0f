package fake_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/fake"
)

func TestValidateInfo(t *testing.T) {
	d := fake.New()
	for _, good := range []map[string]any{
		{}, {"fake_latency": "50ms", "fake_fail": "power,boot", "fake_power": "power on", "fake_agent": true},
	} {
		if err := d.ValidateInfo(good); err != nil {
			t.Errorf("%v refused: %v", good, err)
		}
	}
	for key, bad := range map[string]map[string]any{
		"fake_latency": {"fake_latency": "soon"},
		"fake_fail":    {"fake_fail": "power,teleport"},
		"fake_power":   {"fake_power": "half"},
		"fake_agent":   {"fake_agent": "yes"},
	} {
		var ie *drivers.InfoError
		if err := d.ValidateInfo(bad); !errors.As(err, &ie) || ie.Key != key {
			t.Errorf("%v: %v, want an InfoError naming %s", bad, err, key)
		}
	}
}

func TestStatefulPowerAndBoot(t *testing.T) {
	d, ctx := fake.New(), context.Background()
	n := drivers.Node{UUID: "u1", Name: "n1", DriverInfo: map[string]any{}}
	if p, _ := d.PowerState(ctx, n); p != drivers.PowerOff {
		t.Fatalf("initial power %s", p)
	}
	for _, step := range []struct {
		action drivers.PowerAction
		want   drivers.PowerState
	}{
		{drivers.ActionPowerOn, drivers.PowerOn},
		{drivers.ActionPowerOn, drivers.PowerOn}, // idempotent
		{drivers.ActionSoftPowerOff, drivers.PowerOff},
		{drivers.ActionReboot, drivers.PowerOn},
	} {
		if err := d.SetPowerState(ctx, n, step.action, 0); err != nil {
			t.Fatal(err)
		}
		if p, _ := d.PowerState(ctx, n); p != step.want {
			t.Errorf("after %s: %s, want %s", step.action, p, step.want)
		}
	}
	if err := d.SetBootDevice(ctx, n, drivers.BootPXE, false); err != nil {
		t.Fatal(err)
	}
	if dev, persistent, _ := d.BootDevice(ctx, n); dev != drivers.BootPXE || persistent {
		t.Errorf("boot device %s persistent=%v", dev, persistent)
	}
	_ = d.SetPowerState(ctx, n, drivers.ActionReboot, 0) // uses up the one-time setting
	if dev, persistent, _ := d.BootDevice(ctx, n); dev != drivers.BootDisk || !persistent {
		t.Errorf("after reboot: %s persistent=%v, want the persistent default back", dev, persistent)
	}
	if err := d.SetBootDevice(ctx, n, drivers.BootUEFIHTTP, true); !errors.Is(err, drivers.ErrNotSupported) {
		t.Errorf("unsupported device: %v", err)
	}
	other := drivers.Node{UUID: "u2", DriverInfo: map[string]any{"fake_power": "power on"}}
	if p, _ := d.PowerState(ctx, other); p != drivers.PowerOn {
		t.Errorf("fake_power not honoured: %s", p)
	}
}

func TestInjectedLatencyAndFailures(t *testing.T) {
	d := fake.New()
	slow := drivers.Node{UUID: "s", Name: "slow", DriverInfo: map[string]any{"fake_latency": "1h"}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.PowerState(ctx, slow); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("latency past the deadline: %v after %s", err, time.Since(start))
	}
	broken := drivers.Node{UUID: "b", Name: "broken", DriverInfo: map[string]any{"fake_fail": "power"}}
	if _, err := d.PowerState(context.Background(), broken); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("injected failure: %v (must name the node)", err)
	}
	if err := d.SetBootDevice(context.Background(), broken, drivers.BootPXE, false); err != nil {
		t.Errorf("boot not listed in fake_fail but failed: %v", err)
	}
}

func TestAgentSetting(t *testing.T) {
	d := fake.New()
	agentless := drivers.Node{UUID: "a", DriverInfo: map[string]any{}}
	agented := drivers.Node{UUID: "b", DriverInfo: map[string]any{"fake_agent": true}}
	if !d.ProvisionsWithoutAgent(agentless) || d.ProvisionsWithoutAgent(agented) {
		t.Error("fake_agent not honoured")
	}
	if props, err := d.Inspect(context.Background(), agentless); err != nil || props["cpu_arch"] != "x86_64" {
		t.Errorf("inspect: %v %v", props, err)
	}
	if _, err := d.Inspect(context.Background(), agented); !errors.Is(err, drivers.ErrNotSupported) {
		t.Errorf("out-of-band inspection with fake_agent: %v", err)
	}
}
