package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

func name(s string) *string { return &s }

func mustNode(t *testing.T, q store.Querier, n *store.Node) *store.Node {
	t.Helper()
	if n.ProvisionState == "" {
		n.ProvisionState = "enroll"
	}
	if n.Driver == "" {
		n.Driver = "fake"
	}
	if err := store.CreateNode(context.Background(), q, n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNodeRoundTrip(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	n := mustNode(t, db, &store.Node{Name: name("a"), DriverInfo: store.JSONObject{"k": "v", "n": 1.5}})
	if n.ID == 0 || n.UUID == "" || n.CreatedAt.IsZero() {
		t.Fatalf("CreateNode did not fill id/uuid/created_at: %+v", n)
	}
	for _, ident := range []string{n.UUID, "a"} {
		got, err := store.GetNode(ctx, db, ident)
		if err != nil {
			t.Fatalf("GetNode(%s): %v", ident, err)
		}
		if got.ID != n.ID || got.DriverInfo["k"] != "v" || got.DriverInfo["n"] != 1.5 || got.Properties == nil {
			t.Errorf("GetNode(%s) = %+v", ident, got)
		}
	}
}

func TestMissingRowsAreNotFound(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	_, err := store.GetNode(ctx, db, "6d85703a-565d-469a-96ce-30b6de53079d")
	if !errors.Is(err, store.ErrNotFound) || !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("GetNode unknown uuid: %v", err)
	}
	if _, err := store.GetNode(ctx, db, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetNode unknown name: %v", err)
	}
	if _, err := store.GetPortByUUID(ctx, db, "6d85703a-565d-469a-96ce-30b6de53079d"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetPortByUUID: %v", err)
	}
	if err := store.DeleteNode(ctx, db, 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteNode: %v", err)
	}
}

func TestUniqueViolationsAreConflicts(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	n := mustNode(t, db, &store.Node{Name: name("dup")})
	err := store.CreateNode(ctx, db, &store.Node{Name: name("dup"), Driver: "fake", ProvisionState: "enroll"})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Constraint != store.NodeNameUnique || !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := store.CreatePort(ctx, db, &store.Port{Address: "52:54:00:00:00:01", NodeID: n.ID}); err != nil {
		t.Fatal(err)
	}
	err = store.CreatePort(ctx, db, &store.Port{Address: "52:54:00:00:00:01", NodeID: n.ID})
	if !errors.As(err, &ce) || ce.Constraint != store.PortAddressUnique {
		t.Fatalf("duplicate MAC: %v", err)
	}
	err = store.CreatePort(ctx, db, &store.Port{Address: "52:54:00:00:00:02", NodeID: n.ID + 1000})
	if !errors.As(err, &ce) || ce.Constraint != store.PortNodeForeignKey {
		t.Fatalf("port on missing node: %v", err)
	}
	// The schema itself refuses un-normalised MACs, whatever the caller does.
	err = store.CreatePort(ctx, db, &store.Port{Address: "52:54:00:00:00:0A", NodeID: n.ID})
	if !errors.As(err, &ce) {
		t.Fatalf("upper-case MAC stored: %v", err)
	}
}

func TestListNodesKeysetPaging(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	// Two nodes share each driver, so paging must break ties by id.
	for _, d := range []string{"b", "a", "b", "a", "c"} {
		mustNode(t, db, &store.Node{Driver: d})
	}
	for _, desc := range []bool{false, true} {
		var seen []string
		marker := ""
		for {
			page, err := store.ListNodes(ctx, db, store.NodeQuery{Limit: 2, MarkerUUID: marker, SortKey: "driver", SortDesc: desc})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range page {
				seen = append(seen, n.Driver)
			}
			if len(page) < 2 {
				break
			}
			marker = page[len(page)-1].UUID
		}
		want := "aabbc"
		if desc {
			want = "cbbaa"
		}
		got := ""
		for _, d := range seen {
			got += d
		}
		if got != want {
			t.Errorf("desc=%v: paged drivers %q, want %q", desc, got, want)
		}
	}
	maint := true
	if page, err := store.ListNodes(ctx, db, store.NodeQuery{Limit: 10, Maintenance: &maint}); err != nil || len(page) != 0 {
		t.Errorf("maintenance filter: %v %d", err, len(page))
	}
	if page, err := store.ListNodes(ctx, db, store.NodeQuery{Limit: 10, Driver: "a"}); err != nil || len(page) != 2 {
		t.Errorf("driver filter: %v %d", err, len(page))
	}
}

func TestTransactRollsBack(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	boom := errors.New("boom")
	err := store.Transact(ctx, db, func(tx *sqlx.Tx) error {
		mustNode(t, tx, &store.Node{Name: name("ghost")})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transact returned %v", err)
	}
	if _, err := store.GetNode(ctx, db, "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a rolled-back node is visible: %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = store.Transact(ctx, db, func(tx *sqlx.Tx) error {
			mustNode(t, tx, &store.Node{Name: name("panicky")})
			panic("bad")
		})
	}()
	if _, err := store.GetNode(ctx, db, "panicky"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a node from a panicking transaction is visible: %v", err)
	}
}

// TestMigrationsFromScratch applies every migration to an empty database,
// checks nothing is pending, and that applying again is a no-op.
func TestMigrationsFromScratch(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	if _, err := db.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	pending, err := store.PendingMigrations(ctx, db.DB)
	if err != nil || pending == 0 {
		t.Fatalf("pending on empty database = %d, %v", pending, err)
	}
	for range 2 {
		if err := store.Migrate(ctx, db.DB); err != nil {
			t.Fatal(err)
		}
	}
	if pending, err := store.PendingMigrations(ctx, db.DB); err != nil || pending != 0 {
		t.Fatalf("pending after migrate = %d, %v", pending, err)
	}
	var exists bool
	if err := db.Get(&exists, `SELECT to_regclass('ports') IS NOT NULL`); err != nil || !exists {
		t.Fatalf("ports table missing: %v", err)
	}
}

// TestPowerReadIsFenced: a power read taken before the node was locked and
// released again is stale, and writes nothing (it could revoke the agent
// tokens of a machine the work in between restarted).
func TestPowerReadIsFenced(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	n := mustNode(t, db, &store.Node{Name: name("fenced")})
	claimed, err := store.GetNodeByID(ctx, db, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := store.AcquireNodeLock(ctx, db, n.ID, "worker", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ReleaseNodeLock(ctx, db, n.ID, tok); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordPowerRead(ctx, db, n.ID, claimed.LockToken, "power off"); !errors.Is(err, store.ErrStale) {
		t.Fatalf("read from before the lock: %v, want ErrStale", err)
	}
	if err := store.RecordPowerRead(ctx, db, n.ID, tok, "power off"); err != nil {
		t.Fatalf("read after it: %v", err)
	}
}
