package conductor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

const time10s = 10 * time.Second

// TestLockExclusiveAndFenced: of 20 concurrent acquirers exactly one wins;
// once its lease runs out another may take the node, and the first can then
// neither renew nor write.
func TestLockExclusiveAndFenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(e.conductor("c1"), "fenced", nil)
	ctx := context.Background()

	var mu sync.Mutex
	var winners []int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := store.AcquireNodeLock(ctx, e.db, n.ID, "owner-"+string(rune('a'+i)), time10s)
			var le *store.LockedError
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, tok)
				mu.Unlock()
			case errors.As(err, &le):
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d acquirers won, want 1", len(winners))
	}
	first := winners[0]
	if err := store.Transition(ctx, e.db, n.ID, &store.Fence{Token: first}, "enroll", "verifying", nil, nil); err != nil {
		t.Fatalf("fenced write by the holder: %v", err)
	}
	// The lease runs out (set in the past: a short lease and a sleep let a
	// slow acquirer win the contest above too, on a loaded machine).
	if _, err := e.db.Exec(`UPDATE nodes SET reservation_expires_at = now() - interval '1 second' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	second, err := store.AcquireNodeLock(ctx, e.db, n.ID, "late", time10s)
	if err != nil || second <= first {
		t.Fatalf("taking an expired lock: token %d, %v (first %d)", second, err, first)
	}
	if err := store.RenewNodeLock(ctx, e.db, n.ID, first, time10s); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("renewal by the expired holder: %v, want ErrLeaseLost", err)
	}
	if err := store.Transition(ctx, e.db, n.ID, &store.Fence{Token: first}, "verifying", "manageable", nil, nil); !errors.Is(err, store.ErrStale) {
		t.Errorf("write by the expired holder: %v, want ErrStale", err)
	}
	if err := store.ReleaseNodeLock(ctx, e.db, n.ID, first); err != nil {
		t.Fatal(err)
	}
	if got := e.get(n.UUID); got.LockHolder(time.Now()) != "late" || got.ProvisionState != "verifying" {
		t.Errorf("the stale holder's release or write took effect: holder %q state %s", got.LockHolder(time.Now()), got.ProvisionState)
	}
}
