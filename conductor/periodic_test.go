package conductor_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
)

func syncCfg() conductor.PeriodicConfig {
	return conductor.PeriodicConfig{PowerSyncInterval: time.Hour, PowerSyncWorkers: 8, PowerSyncTimeout: time.Second, PowerSyncMaxFailures: 3}
}

// makeDue makes every node due for a power read now.
func (e *env) makeDue() {
	e.t.Helper()
	if _, err := e.db.Exec(`UPDATE nodes SET power_sync_due_at = now() - interval '1 second'`); err != nil {
		e.t.Fatal(err)
	}
}

func TestPowerSyncRecordsDriftFaultsAndRecovery(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1")
	ctx := context.Background()
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("synced"), Driver: "counting", InitialState: conductor.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}

	// First read records the state.
	if _, err := c.SyncPowerStates(ctx, syncCfg()); err != nil {
		t.Fatal(err)
	}
	if got := e.get(n.UUID); deref(got.PowerState) != "power off" {
		t.Fatalf("first sync recorded %s", deref(got.PowerState))
	}
	// Someone powers the node on behind our back: drift is recorded.
	drv.setPower(n.UUID, drivers.PowerOn)
	e.makeDue()
	stats, err := c.SyncPowerStates(ctx, syncCfg())
	if err != nil || stats.Changed != 1 {
		t.Fatalf("drift round: %+v %v", stats, err)
	}
	if got := e.get(n.UUID); deref(got.PowerState) != "power on" {
		t.Errorf("drift not recorded: %s", deref(got.PowerState))
	}
	// Powered off behind our back: the agent is gone, so are its tokens.
	before := tokenGeneration(t, e, n.ID)
	drv.setPower(n.UUID, drivers.PowerOff)
	e.makeDue()
	if _, err := c.SyncPowerStates(ctx, syncCfg()); err != nil {
		t.Fatal(err)
	}
	if after := tokenGeneration(t, e, n.ID); after != before+1 {
		t.Errorf("agent token generation %d after the machine was found off, want %d", after, before+1)
	}
	drv.setPower(n.UUID, drivers.PowerOn) // back on for the rest
	e.makeDue()
	if _, err := c.SyncPowerStates(ctx, syncCfg()); err != nil {
		t.Fatal(err)
	}
	if after := tokenGeneration(t, e, n.ID); after != before+1 {
		t.Errorf("found on again: generation %d, want it unchanged at %d", after, before+1)
	}
	// The BMC stops answering: after three failed rounds, a fault.
	drv.failRead.Store(true)
	for round := 1; round <= 3; round++ {
		e.makeDue()
		if _, err := c.SyncPowerStates(ctx, syncCfg()); err != nil {
			t.Fatal(err)
		}
		got := e.get(n.UUID)
		if round < 3 && got.Fault != nil {
			t.Fatalf("fault after %d failures", round)
		}
		if round == 3 && (deref(got.Fault) != "power failure" || !strings.Contains(deref(got.LastError), "BMC unreachable")) {
			t.Fatalf("after 3 failures: fault %s last_error %s", deref(got.Fault), deref(got.LastError))
		}
	}
	// It answers again: the fault clears.
	drv.failRead.Store(false)
	e.makeDue()
	if _, err := c.SyncPowerStates(ctx, syncCfg()); err != nil {
		t.Fatal(err)
	}
	if got := e.get(n.UUID); got.Fault != nil || got.PowerSyncFailures != 0 {
		t.Errorf("not recovered: fault %s failures %d", deref(got.Fault), got.PowerSyncFailures)
	}
	history, _ := store.NodeHistory(ctx, e.db, n.ID)
	var kinds []string
	for _, h := range history {
		kinds = append(kinds, h.Severity)
	}
	if strings.Join(kinds, ",") != "WARNING,WARNING,WARNING,ERROR,INFO" {
		t.Errorf("history severities %v, want three drift warnings, fault error, recovery info", kinds)
	}
}

// TestPowerSyncForcesRecordedState: with force on, the hardware is set back.
func TestPowerSyncForcesRecordedState(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1")
	ctx := context.Background()
	n, _ := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("forced"), Driver: "counting", InitialState: conductor.StateAvailable})
	if _, err := e.db.Exec(`UPDATE nodes SET power_state = 'power off' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	drv.setPower(n.UUID, drivers.PowerOn)
	cfg := syncCfg()
	cfg.ForcePowerState = true
	if _, err := c.SyncPowerStates(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if p, _ := drv.PowerState(ctx, drivers.Node{UUID: n.UUID}); p != drivers.PowerOff {
		t.Errorf("hardware left %s; force should power it off", p)
	}
	if got := e.get(n.UUID); deref(got.PowerState) != "power off" {
		t.Errorf("record changed to %s", deref(got.PowerState))
	}
	if g := tokenGeneration(t, e, n.ID); g != 2 {
		t.Errorf("agent token generation %d after forcing power off, want 2 (revoked)", g)
	}
	// Recorded on, found off, forced back on: the agent that was running is
	// gone, so are its tokens.
	if _, err := e.db.Exec(`UPDATE nodes SET power_state = 'power on', power_sync_due_at = now() WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SyncPowerStates(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if p, _ := drv.PowerState(ctx, drivers.Node{UUID: n.UUID}); p != drivers.PowerOn {
		t.Errorf("hardware left %s; force should power it on", p)
	}
	if g := tokenGeneration(t, e, n.ID); g != 3 {
		t.Errorf("agent token generation %d after finding the machine off, want 3 (revoked)", g)
	}
}

// TestPowerSyncSkipsEnroll: a node in enroll is never read, as in Ironic: its
// BMC address may be what an unknown agent reported (discovery), so the
// conductor does not connect to it before an operator's manage.
func TestPowerSyncSkipsEnroll(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1")
	ctx := context.Background()
	enrolled, err := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("enrolled"), Driver: "counting"})
	if err != nil {
		t.Fatal(err)
	}
	managed, err := c.CreateNode(ctx, conductor.NodeSpec{Name: ptr("managed"), Driver: "counting", InitialState: conductor.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}
	e.makeDue()
	stats, err := c.SyncPowerStates(ctx, syncCfg())
	if err != nil {
		t.Fatal(err)
	}
	_, reads := drv.counts()
	if reads[enrolled.UUID] != 0 || reads[managed.UUID] != 1 || stats.Read != 1 {
		t.Errorf("reads %v (stats %+v): want the available node read once and the enroll node never", reads, stats)
	}
}

func tokenGeneration(t *testing.T, e *env, nodeID int64) int64 {
	t.Helper()
	var g int64
	if err := e.db.Get(&g, `SELECT agent_token_generation FROM nodes WHERE id = $1`, nodeID); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestPowerSyncSharedByConductors: two conductors syncing at once read each
// node exactly once in a round.
func TestPowerSyncSharedByConductors(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(5 * time.Millisecond)
	e := newEnv(t, drv)
	if _, err := e.db.Exec(`INSERT INTO nodes (uuid, name, driver, provision_state)
		SELECT gen_random_uuid(), 'n' || i, 'counting', 'manageable' FROM generate_series(1, 300) i`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stats := make([]conductor.PowerSyncStats, 2)
	for i, name := range []string{"c1", "c2"} {
		c := e.conductor(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.SyncPowerStates(context.Background(), syncCfg())
			if err != nil {
				t.Error(err)
			}
			stats[i] = s
		}()
	}
	wg.Wait()
	_, reads := drv.counts()
	if len(reads) != 300 {
		t.Fatalf("%d nodes read, want 300", len(reads))
	}
	for u, r := range reads {
		if r != 1 {
			t.Errorf("node %s read %d times in one round", u, r)
		}
	}
	if stats[0].Read+stats[1].Read != 300 || stats[0].Read == 0 || stats[1].Read == 0 {
		t.Errorf("round split %d + %d; both conductors should share 300", stats[0].Read, stats[1].Read)
	}
}

// TestCallbackTimeout: a node whose agent does not call back within the
// callback timeout fails with Ironic's message for its wait and is powered
// off; a deploying node whose agent checked in recently, a node within its
// timeout and a node in maintenance keep waiting.
func TestCallbackTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	info := map[string]any{"fake_agent": true, "fake_power": "power on"}
	wait := func(name, state, target, since string) *store.Node {
		n := e.node(c, name, info)
		if _, err := e.db.Exec(`UPDATE nodes SET provision_state = $2, target_provision_state = $3, power_state = 'power on',
			provision_updated_at = now() - $4::interval WHERE id = $1`, n.ID, state, target, since); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// An inspection times out from its start, checkins or not (Ironic's
	// inspect_wait_timeout); a deploy or clean from the agent's last checkin.
	inspecting := wait("inspect", conductor.StateInspectWait, "manageable", "1 hour")
	timedOut := map[*store.Node]struct{ failed, lastError string }{
		wait("deploy", conductor.StateWaitCallback, "active", "1 hour"): {conductor.StateDeployFailed, "Timeout reached while waiting for callback for node "},
		wait("clean", conductor.StateCleanWait, "available", "1 hour"): {conductor.StateCleanFailed,
			"Timeout reached while cleaning the node. Please check if the ramdisk responsible for the cleaning is running on the node."},
		inspecting: {conductor.StateInspectFailed,
			"Timeout reached while inspecting the node. Please check if the ramdisk responsible for the inspection is running on the node."},
	}
	fresh := wait("patient", conductor.StateWaitCallback, "active", "0 seconds")
	alive := wait("alive", conductor.StateWaitCallback, "active", "1 hour") // its agent writes the image, checking in
	for _, n := range []*store.Node{alive, inspecting} {
		if _, err := e.db.Exec(`INSERT INTO agent_checkins (node_id, token_generation, checked_in_at, source_address, protocol)
			SELECT id, agent_token_generation, now(), '10.20.0.15', 'native' FROM nodes WHERE id = $1`, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	held := wait("held", conductor.StateWaitCallback, "active", "1 hour")
	if _, err := e.db.Exec(`UPDATE nodes SET maintenance = true WHERE id = $1`, held.ID); err != nil {
		t.Fatal(err)
	}
	e.start(c, conductor.PeriodicConfig{CallbackTimeout: 30 * time.Minute})
	for n, want := range timedOut {
		got := e.waitState(n.UUID, want.failed)
		if !strings.HasPrefix(deref(got.LastError), want.lastError) || !strings.HasSuffix(deref(got.LastError), " 30m0s (callback timeout).") ||
			got.TargetProvisionState == nil {
			t.Errorf("%s timed out: last_error %q target %s, want %q... with its target", n.UUID, deref(got.LastError),
				deref(got.TargetProvisionState), want.lastError)
		}
		e.waitFor(10*time.Second, "the timed-out node powered off", func() bool {
			p := e.get(n.UUID)
			return deref(p.PowerState) == "power off" && p.TargetPowerState == nil
		})
		if off := e.get(n.UUID); !strings.HasPrefix(deref(off.LastError), want.lastError) {
			t.Errorf("powering off replaced the timeout's last_error with %q", deref(off.LastError))
		}
	}
	for _, n := range []*store.Node{fresh, alive, held} {
		if still := e.get(n.UUID); still.ProvisionState != conductor.StateWaitCallback || deref(still.PowerState) != "power on" {
			t.Errorf("%s was failed or powered off: %s, %s", deref(n.Name), still.ProvisionState, deref(still.PowerState))
		}
	}
}

// TestCallbackTimeoutOfIPA: an ironic-python-agent that heartbeats does
// not keep a deploy or clean waiting (Ferric does not drive IPA: nothing is
// doing the work); the timeout fails the node saying so. A ramdisk that
// reports its progress (agent_status) does the work and keeps it waiting.
func TestCallbackTimeoutOfIPA(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	wait := func(name, state, target, status string) *store.Node {
		n := e.node(c, name, map[string]any{"fake_agent": true})
		if _, err := e.db.Exec(`UPDATE nodes SET provision_state = $2, target_provision_state = $3,
			provision_updated_at = now() - interval '1 hour' WHERE id = $1`, n.ID, state, target); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(`INSERT INTO agent_checkins (node_id, token_generation, checked_in_at, source_address, protocol, agent_version, agent_status)
			SELECT id, agent_token_generation, now(), '10.20.0.15', 'ipa', '10.1.0', NULLIF($2, '') FROM nodes WHERE id = $1`, n.ID, status); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deploy := wait("ipa-deploy", conductor.StateWaitCallback, "active", "")
	clean := wait("ipa-clean", conductor.StateCleanWait, "available", "")
	reporting := wait("reporting", conductor.StateWaitCallback, "active", "start")
	e.start(c, conductor.PeriodicConfig{CallbackTimeout: 30 * time.Minute})
	for n, want := range map[*store.Node]struct{ failed, says string }{
		deploy: {conductor.StateDeployFailed, "Ferric does not drive IPA, so nothing wrote the image"},
		clean:  {conductor.StateCleanFailed, "Ferric does not drive IPA, so nothing cleaned the disks"},
	} {
		got := e.waitState(n.UUID, want.failed)
		if !strings.HasPrefix(deref(got.LastError), "Timeout reached while ") || !strings.Contains(deref(got.LastError), want.says) {
			t.Errorf("%s: last_error %q, want the timeout saying %q", deref(n.Name), deref(got.LastError), want.says)
		}
	}
	if st := e.get(reporting.UUID).ProvisionState; st != conductor.StateWaitCallback {
		t.Errorf("a ramdisk reporting its progress was failed: %s", st)
	}
}

// TestDeadConductorsTasksRecovered: tasks claimed by a conductor that then
// vanished are taken over once their lease runs out: a power task runs
// again, a provisioning task fails its node with a reason.
func TestDeadConductorsTasksRecovered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("survivor")
	e.register("survivor")
	ctx := context.Background()
	power := e.node(c, "power", nil)
	deploy := e.node(c, "deploy", nil)
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = 'available' WHERE id = $1`, deploy.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangePowerState(ctx, power.UUID, conductor.PowerRequest{Target: "power on"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeProvisionState(ctx, deploy.UUID, conductor.ProvisionRequest{Target: "active"}); err != nil {
		t.Fatal(err)
	}
	// "ghost" claims both and dies holding them (and the deploy node's lock).
	claimed, err := store.ClaimTasks(ctx, e.db, conductor.PoolOperator, "ghost", []string{"fake"}, 10, 200*time.Millisecond)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("ghost claimed %d: %v", len(claimed), err)
	}
	if _, err := store.AcquireNodeLock(ctx, e.db, deploy.ID, "ghost", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	e.start(c, conductor.PeriodicConfig{})

	got := e.waitState(deploy.UUID, conductor.StateDeployFailed)
	if !strings.Contains(deref(got.LastError), "ghost") {
		t.Errorf("deploy failed without naming the dead conductor: %s", deref(got.LastError))
	}
	e.waitFor(10*time.Second, "power task re-run to the end", func() bool {
		var open int
		_ = e.db.Get(&open, `SELECT count(*) FROM tasks WHERE state IN ('queued', 'running')`)
		return open == 0 && deref(e.get(power.UUID).PowerState) == "power on"
	})
	var rows []struct {
		Kind    string `db:"kind"`
		State   string `db:"state"`
		Attempt int    `db:"attempt"`
		Owner   string `db:"owner"`
	}
	_ = e.db.Select(&rows, `SELECT kind, state, attempt, owner FROM tasks ORDER BY kind`)
	want := "power done 2 survivor|provision failed 1 survivor"
	var have []string
	for _, r := range rows {
		have = append(have, fmt.Sprintf("%s %s %d %s", r.Kind, r.State, r.Attempt, r.Owner))
	}
	if strings.Join(have, "|") != want {
		t.Errorf("tasks after recovery: %v, want %s", have, want)
	}
}
