package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/drivers/fake"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

// TestKilledConductorLosesNothing runs a real conductor process, kills it
// with SIGKILL while it holds a reboot (its BMC call made) and a deploy, and
// shows a second conductor taking over: the reboot is not made again (that
// would be a second real reboot) but read back from the BMC, as Ironic never
// re-runs an interrupted power action; the deploy fails cleanly, naming the
// dead conductor.
func TestKilledConductorLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real conductor")
	}
	bin := filepath.Join(t.TempDir(), "ferric-conductor")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	url := pgtest.URL(t)
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	ctx := context.Background()

	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := conductor.New(db, reg, quiet, conductor.Options{Name: "api"})
	slow := map[string]any{"fake_latency": "1h"} // the BMC hangs: the tasks are mid-flight when killed
	power, _ := api.CreateNode(ctx, conductor.NodeSpec{Name: ptr("power"), Driver: "fake", DriverInfo: slow})
	deploy, _ := api.CreateNode(ctx, conductor.NodeSpec{Name: ptr("deploy"), Driver: "fake", DriverInfo: slow})
	if _, err := db.Exec(`UPDATE nodes SET provision_state = 'available' WHERE id = $1`, deploy.ID); err != nil {
		t.Fatal(err)
	}

	doomed := exec.Command(bin)
	doomed.Env = append(os.Environ(), "FERRIC_DATABASE_URL="+url, "FERRIC_CONDUCTOR_NAME=doomed",
		"FERRIC_TASK_LEASE=2s", "FERRIC_LOCK_TTL=2s", "FERRIC_POWER_SYNC_INTERVAL=0", "FERRIC_LOG_FORMAT=json")
	doomed.Stderr = io.Discard
	if err := doomed.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "doomed registered", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM conductors WHERE name = 'doomed'`)
		return n == 1
	})
	if _, err := api.ChangePowerState(ctx, power.UUID, conductor.PowerRequest{Target: "rebooting"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ChangeProvisionState(ctx, deploy.UUID, conductor.ProvisionRequest{Target: "active"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "doomed running both tasks", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM tasks WHERE state = 'running' AND owner = 'doomed'`)
		return n == 2
	})
	waitFor(t, 20*time.Second, "doomed calling the BMC for the reboot", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM tasks WHERE node_id = $1 AND driver_call_at IS NOT NULL`, power.ID)
		return n == 1
	})
	if err := doomed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = doomed.Wait()
	t.Log("killed the conductor with both tasks in flight")

	// The BMC answers again, the rebooted node on; a second conductor
	// starts, counting the power calls it makes.
	if _, err := db.Exec(`UPDATE nodes SET driver_info = '{"fake_power": "power on"}'`); err != nil {
		t.Fatal(err)
	}
	counting := &countingFake{Driver: fake.New(), calls: map[string]int{}}
	survivorDrivers := drivers.NewRegistry(counting)
	if err := survivorDrivers.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	survivor := conductor.New(db, survivorDrivers, quiet, conductor.Options{Name: "survivor", TaskLease: 2 * time.Second, LockTTL: 2 * time.Second})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = survivor.RunWorkers(runCtx, conductor.WorkerConfig{Pools: map[string]int{conductor.PoolOperator: 2}})
	}()
	go func() {
		defer wg.Done()
		_ = survivor.RunPeriodic(runCtx, conductor.PeriodicConfig{CheckInterval: 200 * time.Millisecond})
	}()
	defer func() { cancel(); wg.Wait() }()

	waitFor(t, 30*time.Second, "both tasks settled", func() bool {
		var open int
		_ = db.Get(&open, `SELECT count(*) FROM tasks WHERE state IN ('queued', 'running')`)
		return open == 0
	})
	got, _ := store.GetNodeByUUID(ctx, db, power.UUID)
	if got.PowerState == nil || *got.PowerState != "power on" || got.TargetPowerState != nil || got.LastError != nil {
		t.Errorf("power node after takeover: power %v target %v last_error %v", got.PowerState, got.TargetPowerState, got.LastError)
	}
	if n := counting.callsOf(power.UUID); n != 0 {
		t.Errorf("the survivor rebooted the node %d times; the reboot the dead conductor made must not be repeated", n)
	}
	var powerTask struct {
		State   string `db:"state"`
		Attempt int    `db:"attempt"`
	}
	_ = db.Get(&powerTask, `SELECT state, attempt FROM tasks WHERE node_id = $1`, power.ID)
	if powerTask.State != "done" || powerTask.Attempt != 2 {
		t.Errorf("power task %+v, want done on its second attempt (a read)", powerTask)
	}
	dep, _ := store.GetNodeByUUID(ctx, db, deploy.UUID)
	if dep.ProvisionState != conductor.StateDeployFailed || dep.LastError == nil || !strings.Contains(*dep.LastError, "doomed") {
		t.Errorf("deploy node after takeover: %s, last_error %v", dep.ProvisionState, dep.LastError)
	}
	if h := dep.LockHolder(time.Now()); h != "" {
		t.Errorf("deploy node still locked by %s", h)
	}
	t.Logf("power: %s on attempt %d; deploy: %s (%s)", powerTask.State, powerTask.Attempt, dep.ProvisionState, *dep.LastError)
}

// countingFake is the fake driver, counting the power changes asked of it.
type countingFake struct {
	*fake.Driver
	mu    sync.Mutex
	calls map[string]int
}

func (d *countingFake) SetPowerState(ctx context.Context, n drivers.Node, a drivers.PowerAction, timeout time.Duration) error {
	d.mu.Lock()
	d.calls[n.UUID]++
	d.mu.Unlock()
	return d.Driver.SetPowerState(ctx, n, a, timeout)
}

func (d *countingFake) callsOf(uuid string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[uuid]
}

func ptr(s string) *string { return &s }

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
