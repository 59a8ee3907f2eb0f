package conductor_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/fault"
)

// TestNodeAutomatedCleanOverridesTheSetting: a node's automated_clean,
// when set, decides whether its cleaning after undeploy and provide boots
// the agent, whatever the conductor's setting; null follows the setting.
func TestNodeAutomatedCleanOverridesTheSetting(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	cleaning := e.conductor("c1")
	e.start(cleaning, conductor.PeriodicConfig{})

	skipped := e.countedNode(cleaning, drv, "opted-out", "52:54:00:00:09:01", conductor.StateActive, image)
	if _, err := e.db.Exec(`UPDATE nodes SET automated_clean = false WHERE id = $1`, skipped.ID); err != nil {
		t.Fatal(err)
	}
	e.provision(cleaning, skipped, "deleted")
	e.waitState(skipped.UUID, conductor.StateAvailable)
	if got := drv.changesOf(skipped.UUID); !slices.Equal(got, []string{"power off", "power off"}) {
		t.Errorf("undeploy of a node with automated_clean false: %q, want power offs only", got)
	}

	following := e.countedNode(cleaning, drv, "follows", "52:54:00:00:09:02", conductor.StateActive, image)
	e.provision(cleaning, following, "deleted")
	e.waitState(following.UUID, conductor.StateCleanWait)
	if got := drv.changesOf(following.UUID); !slices.Contains(got, "boot pxe") {
		t.Errorf("undeploy of a node with automated_clean null under automated cleaning: %q, want the agent booted", got)
	}
}

// TestNodeAutomatedCleanOverridesSkip: automated_clean true on a node
// cleans it by the agent even where the conductor skips automated cleaning.
func TestNodeAutomatedCleanOverridesSkip(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1", func(o *conductor.Options) { o.SkipAutomatedClean = true })
	e.start(c, conductor.PeriodicConfig{})
	n := e.countedNode(c, drv, "opted-in", "52:54:00:00:09:03", conductor.StateManageable, nil)
	if _, err := c.UpdateNode(context.Background(), n.UUID, patch("add", "/automated_clean", `true`), conductor.NodeUpdate{}); err != nil {
		t.Fatal(err)
	}
	e.provision(c, n, "provide")
	e.waitState(n.UUID, conductor.StateCleanWait)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"boot pxe", "rebooting"}) {
		t.Errorf("provide of a node with automated_clean true: %q, want the agent booted", got)
	}
}

// TestNodeInterfacesFollowTheDriver: interfaces are checked against what
// the driver offers, with Ironic's two errors, and removed ones go back to
// the default.
func TestNodeInterfacesFollowTheDriver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	ctx := context.Background()
	pxe, fakeImpl, bogus, ipmitool := "pxe", "fake", "warp-drive", "ipmitool"
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Driver: "fake", Interfaces: map[string]*string{"boot": &pxe}})
	if err != nil {
		t.Fatal(err)
	}
	if n.Interfaces["boot"] != "pxe" || n.Interfaces["deploy"] != "fake" || n.Interfaces["network"] != "noop" {
		t.Errorf("interfaces = %v, want boot pxe and the defaults", n.Interfaces)
	}
	_, err = c.CreateNode(ctx, conductor.NodeSpec{Driver: "fake", Interfaces: map[string]*string{"deploy": &bogus}})
	if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(fault.Message(err), "Could not find the following interface in the 'ironic.hardware.interfaces.deploy' entrypoint: warp-drive. Valid interfaces are ['direct', 'fake'].") {
		t.Errorf("unknown implementation: %v", err)
	}
	_, err = c.CreateNode(ctx, conductor.NodeSpec{Driver: "fake", Interfaces: map[string]*string{"power": &ipmitool}})
	if !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("an implementation no enabled driver has: %v", err)
	}
	got, err := c.UpdateNode(ctx, n.UUID, patch("remove", "/boot_interface", ""), conductor.NodeUpdate{})
	if err != nil || got.Interfaces["boot"] != "fake" {
		t.Errorf("after removing boot_interface: %v, %v; want the default, fake", got.Interfaces["boot"], err)
	}
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = 'active' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateNode(ctx, n.UUID, patch("replace", "/boot_interface", `"pxe"`), conductor.NodeUpdate{})
	if !errors.Is(err, fault.ErrConflict) || !strings.Contains(fault.Message(err), "can not have boot_interface updated") {
		t.Errorf("interface change of an active node: %v, want 409", err)
	}
	if _, err := c.UpdateNode(ctx, n.UUID, patch("replace", "/vendor_interface", `"`+fakeImpl+`"`), conductor.NodeUpdate{}); err != nil {
		t.Errorf("setting an interface to what it is, in active: %v", err)
	}
}
