package conductor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
)

// activeNode returns a counting-driver node in active.
func activeNode(t *testing.T, e *env, c *conductor.Conductor, name string) *store.Node {
	t.Helper()
	n, err := c.CreateNode(context.Background(), conductor.NodeSpec{Name: ptr(name), Driver: "counting", InitialState: conductor.StateAvailable})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = 'active' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInterruptedDeleteFailsWhereItWas: a delete whose task has moved on
// to cleaning and is then cut off (here: its time runs out while the BMC
// hangs on the reboot into the agent) fails from cleaning, at once, to
// clean failed; the task row says where it was.
func TestInterruptedDeleteFailsWhereItWas(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1", func(o *conductor.Options) { o.TaskTimeout = 2 * time.Second })
	e.start(c, conductor.PeriodicConfig{})
	n := activeNode(t, e, c, "deleted")
	drv.hang(n.UUID, "rebooting")
	if _, err := c.ChangeProvisionState(context.Background(), n.UUID, conductor.ProvisionRequest{Target: "deleted"}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(10*time.Second, "the delete cleaning", func() bool { return e.get(n.UUID).ProvisionState == conductor.StateCleaning })
	var recorded string
	if err := e.db.Get(&recorded, `SELECT args->>'state' FROM tasks WHERE node_id = $1 AND kind = 'provision'`, n.ID); err != nil {
		t.Fatal(err)
	}
	if recorded != conductor.StateCleaning {
		t.Errorf("the task row says %q while its node is cleaning", recorded)
	}
	got := e.waitState(n.UUID, conductor.StateCleanFailed)
	if !strings.HasPrefix(deref(got.LastError), "cleaning failed: ") {
		t.Errorf("last_error %q, want the cleaning's failure", deref(got.LastError))
	}
}

// TestDeadConductorsDeleteRecoveredFromItsLastState: a dead conductor's
// delete task that had reached cleaning is recovered from cleaning when its
// lease runs out (not left for the orphan check), naming the conductor.
func TestDeadConductorsDeleteRecoveredFromItsLastState(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	ctx := context.Background()
	c := e.conductor("survivor")
	e.register("survivor")
	n := activeNode(t, e, c, "deleted-by-ghost")
	if _, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "deleted"}); err != nil {
		t.Fatal(err)
	}
	// "ghost" claims the delete, moves the node to cleaning as its run
	// would, and dies holding the node's lock.
	claimed, err := store.ClaimTasks(ctx, e.db, conductor.PoolOperator, "ghost", e.reg.EnabledNames(), 10, 200*time.Millisecond)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ghost claimed %d: %v", len(claimed), err)
	}
	token, err := store.AcquireNodeLock(ctx, e.db, n.ID, "ghost", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Transition(ctx, e.db, n.ID, &store.Fence{Token: token}, conductor.StateDeleting, conductor.StateCleaning, ptr(conductor.StateAvailable), nil); err != nil {
		t.Fatal(err)
	}
	if err := store.SetTaskNodeState(ctx, e.db, claimed[0].ID, claimed[0].ClaimToken, conductor.StateCleaning); err != nil {
		t.Fatal(err)
	}
	e.start(c, conductor.PeriodicConfig{})
	got := e.waitState(n.UUID, conductor.StateCleanFailed)
	if !strings.Contains(deref(got.LastError), "conductor ghost stopped responding") {
		t.Errorf("last_error %q, want it to name the dead conductor", deref(got.LastError))
	}
}
