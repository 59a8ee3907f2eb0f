package conductor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/inventory"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

func newConductor(t *testing.T) *conductor.Conductor {
	t.Helper()
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	return conductor.New(pgtest.NewDB(t), reg, slog.New(slog.NewTextHandler(io.Discard, nil)), conductor.Options{})
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"52:54:00:AB:CD:EF":   "52:54:00:ab:cd:ef",
		"52-54-00-ab-cd-ef":   "52:54:00:ab:cd:ef",
		"5254.00ab.cdef":      "52:54:00:ab:cd:ef",
		" 52:54:00:ab:cd:ef ": "52:54:00:ab:cd:ef",
	} {
		if got, ok := inventory.NormalizeMAC(in); !ok || got != want {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "zz:zz:zz:zz:zz:zz", "52:54:00:ab:cd", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "52:54:00:ab:cd:ef:01:02"} {
		if got, ok := inventory.NormalizeMAC(bad); ok {
			t.Errorf("NormalizeMAC(%q) accepted as %q", bad, got)
		}
	}
}

func TestDeleteNodeOnlyAtRest(t *testing.T) {
	t.Parallel()
	c, ctx := newConductor(t), context.Background()
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Driver: "fake"})
	if err != nil {
		t.Fatal(err)
	}
	for state, deletable := range map[string]bool{
		conductor.StateActive: false, conductor.StateCleanWait: false, conductor.StateDeploying: false,
		conductor.StateManageable: true,
	} {
		// Tests move the node directly: state transitions belong to the conductor issue.
		if _, err := conductor.DBOf(t, c).Exec(`UPDATE nodes SET provision_state = $1 WHERE id = $2`, state, n.ID); err != nil {
			t.Fatal(err)
		}
		err := c.DeleteNode(ctx, n.UUID)
		if deletable && err != nil {
			t.Errorf("delete in %s: %v", state, err)
		}
		if !deletable && !errors.Is(err, fault.ErrConflict) {
			t.Errorf("delete in %s: %v, want a conflict", state, err)
		}
		if deletable {
			break
		}
	}
	if _, err := c.GetNode(ctx, n.UUID); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("node still there: %v", err)
	}
}

func TestCreateNodeValidation(t *testing.T) {
	t.Parallel()
	c, ctx := newConductor(t), context.Background()
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	name := func(s string) *string { return &s }
	for _, spec := range []conductor.NodeSpec{
		{},
		{Driver: "redfish-not-enabled"},
		{Driver: "fake", Name: name("")},
		{Driver: "fake", Name: name(string(long))},
		{Driver: "fake", Name: name("has/slash")},
		{Driver: "fake", UUID: "not-a-uuid"},
	} {
		if _, err := c.CreateNode(ctx, spec); fault.KindOf(err) != fault.Invalid {
			t.Errorf("CreateNode(%+v) = %v, want invalid", spec, err)
		}
	}
}
