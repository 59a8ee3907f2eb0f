package conductor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// patch builds a patch from op, path, JSON value triples ("" value: none).
func patch(triples ...string) []conductor.PatchOp {
	var ops []conductor.PatchOp
	for i := 0; i+2 < len(triples); i += 3 {
		op := conductor.PatchOp{Op: triples[i], Path: triples[i+1]}
		if v := triples[i+2]; v != "" {
			op.Value = json.RawMessage(v)
		}
		ops = append(ops, op)
	}
	return ops
}

func seedNode(t *testing.T, c *conductor.Conductor) *store.Node {
	t.Helper()
	name := "patch-me"
	n, err := c.CreateNode(context.Background(), conductor.NodeSpec{
		Name: &name, Driver: "fake",
		DriverInfo: map[string]any{
			"ipmi_address": "10.0.0.1", "ipmi_password": "s3cret", "a/b": "slash", "t~x": "tilde",
			"disks": []any{"sda", "sdb"}, "nested": map[string]any{"deep": map[string]any{"x": 1.0}},
		},
		Properties: map[string]any{"cpus": 8.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUpdateNodeAppliesRFC6902(t *testing.T) {
	t.Parallel()
	c, ctx := newConductor(t), context.Background()
	tests := []struct {
		name  string
		ops   []conductor.PatchOp
		check func(n *store.Node) string
	}{
		{"replace nested key keeps siblings", patch("replace", "/driver_info/ipmi_address", `"10.0.0.2"`),
			func(n *store.Node) string {
				if n.DriverInfo["ipmi_address"] != "10.0.0.2" || n.DriverInfo["ipmi_password"] != "s3cret" {
					return fmt.Sprint(n.DriverInfo)
				}
				return ""
			}},
		{"add a new nested key", patch("add", "/properties/memory_mb", `4096`),
			func(n *store.Node) string {
				if n.Properties["memory_mb"] != 4096.0 || n.Properties["cpus"] != 8.0 {
					return fmt.Sprint(n.Properties)
				}
				return ""
			}},
		{"escaped slash and tilde", patch("replace", "/driver_info/a~1b", `"x"`, "remove", "/driver_info/t~0x", ""),
			func(n *store.Node) string {
				_, tilde := n.DriverInfo["t~x"]
				if n.DriverInfo["a/b"] != "x" || tilde {
					return fmt.Sprint(n.DriverInfo)
				}
				return ""
			}},
		{"deep path", patch("add", "/driver_info/nested/deep/y", `[1, 2]`),
			func(n *store.Node) string {
				deep := n.DriverInfo["nested"].(map[string]any)["deep"].(map[string]any)
				if !reflect.DeepEqual(deep["y"], []any{1.0, 2.0}) || deep["x"] != 1.0 {
					return fmt.Sprint(deep)
				}
				return ""
			}},
		{"list insert, append and remove", patch("add", "/driver_info/disks/0", `"nvme0"`, "add", "/driver_info/disks/-", `"sdc"`, "remove", "/driver_info/disks/1", ""),
			func(n *store.Node) string {
				if !reflect.DeepEqual(n.DriverInfo["disks"], []any{"nvme0", "sdb", "sdc"}) {
					return fmt.Sprint(n.DriverInfo["disks"])
				}
				return ""
			}},
		{"root replace and remove", patch("replace", "/description", `"rack 7"`, "remove", "/name", "", "add", "/resource_class", `"bm.large"`),
			func(n *store.Node) string {
				if n.Description == nil || *n.Description != "rack 7" || n.Name != nil || *n.ResourceClass != "bm.large" {
					return fmt.Sprintf("%v %v %v", n.Description, n.Name, n.ResourceClass)
				}
				return ""
			}},
		{"remove a JSON field resets it", patch("remove", "/properties", ""),
			func(n *store.Node) string {
				if len(n.Properties) != 0 {
					return fmt.Sprint(n.Properties)
				}
				return ""
			}},
		{"conductor group is lower-cased", patch("add", "/conductor_group", `"Rack-A"`),
			func(n *store.Node) string {
				if n.ConductorGroup != "rack-a" {
					return n.ConductorGroup
				}
				return ""
			}},
		{"maintenance with reason, then off clears it", patch("replace", "/maintenance", `true`, "add", "/maintenance_reason", `"disk"`),
			func(n *store.Node) string {
				if !n.Maintenance || n.MaintenanceReason == nil || *n.MaintenanceReason != "disk" {
					return fmt.Sprint(n.Maintenance, n.MaintenanceReason)
				}
				return ""
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := seedNode(t, c)
			defer func() { _ = c.DeleteNode(ctx, n.UUID) }()
			got, err := c.UpdateNode(ctx, n.UUID, tc.ops, conductor.NodeUpdate{})
			if err != nil {
				t.Fatalf("UpdateNode: %v", err)
			}
			if msg := tc.check(got); msg != "" {
				t.Errorf("returned node wrong: %s", msg)
			}
			stored, err := c.GetNode(ctx, n.UUID)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(stored); msg != "" {
				t.Errorf("stored node wrong: %s", msg)
			}
		})
	}
}

func TestUpdateNodeRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	c, ctx := newConductor(t), context.Background()
	n := seedNode(t, c)
	other := "taken"
	if _, err := c.CreateNode(ctx, conductor.NodeSpec{Name: &other, Driver: "fake"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ops  []conductor.PatchOp
		kind fault.Kind
		msg  string
	}{
		{"empty patch", nil, fault.Invalid, "empty"},
		{"move", patch("move", "/name", ""), fault.Invalid, "not supported"},
		{"copy", patch("copy", "/name", ""), fault.Invalid, "not supported"},
		{"test", patch("test", "/name", `"x"`), fault.Invalid, "not supported"},
		{"unknown op", patch("frobnicate", "/name", `"x"`), fault.Invalid, "invalid op"},
		{"no leading slash", patch("replace", "name", `"x"`), fault.Invalid, "invalid path"},
		{"bad escape", patch("replace", "/driver_info/a~2b", `"x"`), fault.Invalid, "~ must be followed"},
		{"unknown root", patch("replace", "/colour", `"red"`), fault.Invalid, "Cannot patch /colour"},
		{"new root attribute", patch("add", "/colour", `"red"`), fault.Invalid, "Adding a new attribute"},
		{"state is not patchable", patch("replace", "/provision_state", `"active"`), fault.Invalid, "Cannot patch"},
		{"internal info is not patchable", patch("add", "/driver_internal_info/x", `1`), fault.Invalid, "Cannot patch"},
		{"uuid is not patchable", patch("replace", "/uuid", `"1be26c0b-03f2-4d2e-ae87-c02d7f33c123"`), fault.Invalid, "Cannot patch"},
		{"remove driver", patch("remove", "/driver", ""), fault.Invalid, "mandatory"},
		{"add without value", patch("add", "/extra/x", ""), fault.Invalid, "needs a value"},
		{"replace missing nested key", patch("replace", "/driver_info/nope", `1`), fault.Invalid, "does not exist"},
		{"remove missing nested key", patch("remove", "/driver_info/nope", ""), fault.Invalid, "does not exist"},
		{"add under missing parent", patch("add", "/driver_info/nope/x", `1`), fault.Invalid, "does not exist"},
		{"list index out of range", patch("add", "/driver_info/disks/5", `"x"`), fault.Invalid, "out of range"},
		{"list index not a number", patch("replace", "/driver_info/disks/x", `"x"`), fault.Invalid, "not a list index"},
		{"path into a string", patch("add", "/driver/x", `1`), fault.Invalid, "neither an object nor a list"},
		{"driver_info not an object", patch("replace", "/driver_info", `"x"`), fault.Invalid, "expected a JSON object"},
		{"maintenance not a boolean", patch("replace", "/maintenance", `"sometimes"`), fault.Invalid, "expected true or false"},
		{"name not a string", patch("replace", "/name", `5`), fault.Invalid, "expected a string"},
		{"bad name", patch("replace", "/name", `"a b"`), fault.Invalid, "logical name"},
		{"uuid-shaped name", patch("replace", "/name", `"1be26c0b-03f2-4d2e-ae87-c02d7f33c123"`), fault.Invalid, "UUID"},
		{"duplicate name", patch("replace", "/name", `"taken"`), fault.Conflict, "already exists"},
		{"unknown driver", patch("replace", "/driver", `"nope"`), fault.Invalid, "supports driver nope"},
		{"bad instance uuid", patch("add", "/instance_uuid", `"xyz"`), fault.Invalid, "expected a UUID"},
		{"unknown chassis", patch("add", "/chassis_uuid", `"1be26c0b-03f2-4d2e-ae87-c02d7f33c123"`), fault.Invalid, "Chassis"},
		{"reason without maintenance", patch("add", "/maintenance_reason", `"x"`), fault.Invalid, "in maintenance"},
		{"NUL in text", patch("add", "/description", `"a\u0000b"`), fault.Invalid, "NUL"},
		{"NUL in JSON", patch("add", "/extra/x", `{"k": "a\u0000"}`), fault.Invalid, "NUL"},
		{"too deep", patch("add", "/extra/x", strings.Repeat("[", 40)+strings.Repeat("]", 40)), fault.Invalid, "nested deeper"},
		{"too long", patch("add", "/resource_class", `"`+strings.Repeat("r", 81)+`"`), fault.Invalid, "at most 80"},
		{"bad conductor group", patch("add", "/conductor_group", `"a b"`), fault.Invalid, "conductor_group"},
		{"good then bad", patch("replace", "/description", `"ok"`, "replace", "/maintenance", `1`), fault.Invalid, "expected true or false"},
	}
	before, err := c.GetNode(ctx, n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.UpdateNode(ctx, n.UUID, tc.ops, conductor.NodeUpdate{})
			if fault.KindOf(err) != tc.kind || !strings.Contains(fault.Message(err), tc.msg) {
				t.Fatalf("UpdateNode = %v (kind %v), want kind %v mentioning %q", err, fault.KindOf(err), tc.kind, tc.msg)
			}
		})
	}
	after, err := c.GetNode(ctx, n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("refused patches changed the node:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestUpdateNodeRefusedWhileBusy(t *testing.T) {
	t.Parallel()
	c, ctx := newConductor(t), context.Background()
	db := conductor.DBOf(t, c)
	n := seedNode(t, c)
	set := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(sql, append([]any{n.ID}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	edit := patch("add", "/extra/x", `1`)

	set(`UPDATE nodes SET provision_state = 'deploying', target_provision_state = 'active' WHERE id = $1`)
	if _, err := c.UpdateNode(ctx, n.UUID, edit, conductor.NodeUpdate{}); !errors.Is(err, fault.ErrConflict) || !strings.Contains(fault.Message(err), "in progress") {
		t.Errorf("patch during deploying: %v, want 409 in progress", err)
	}
	if _, err := c.UpdateNode(ctx, n.UUID, patch("replace", "/maintenance", `true`), conductor.NodeUpdate{}); err != nil {
		t.Errorf("maintenance-only patch during deploying: %v", err)
	}
	// Maintenance does not open the node to other changes (Ironic's rule):
	// the work in flight may still write it.
	if _, err := c.UpdateNode(ctx, n.UUID, edit, conductor.NodeUpdate{}); !errors.Is(err, fault.ErrConflict) {
		t.Errorf("patch in maintenance during deploying: %v, want 409", err)
	}
	set(`UPDATE nodes SET maintenance = false, provision_state = 'deploy failed' WHERE id = $1`)
	if _, err := c.UpdateNode(ctx, n.UUID, edit, conductor.NodeUpdate{}); err != nil {
		t.Errorf("patch in deploy failed: %v", err)
	}

	set(`UPDATE nodes SET provision_state = 'manageable', target_provision_state = NULL,
		reservation = 'conductor-7', reservation_expires_at = now() + interval '1 minute' WHERE id = $1`)
	for name, call := range map[string]func() error{
		"patch":       func() error { _, err := c.UpdateNode(ctx, n.UUID, edit, conductor.NodeUpdate{}); return err },
		"maintenance": func() error { return c.SetMaintenance(ctx, n.UUID, nil, "") },
		"unset":       func() error { return c.ClearMaintenance(ctx, n.UUID, "") },
		"delete":      func() error { return c.DeleteNode(ctx, n.UUID) },
		"port": func() error {
			_, err := c.CreatePort(ctx, conductor.PortSpec{NodeIdent: n.UUID, Address: "52:54:00:00:00:09"})
			return err
		},
	} {
		err := call()
		if !errors.Is(err, fault.ErrLocked) || !strings.Contains(fault.Message(err), "conductor-7") {
			t.Errorf("%s on a locked node: %v, want 409 naming the holder", name, err)
		}
	}
	set(`UPDATE nodes SET reservation_expires_at = now() - interval '1 second' WHERE id = $1`)
	if _, err := c.UpdateNode(ctx, n.UUID, edit, conductor.NodeUpdate{}); err != nil {
		t.Errorf("patch after the lease ran out: %v", err)
	}
	var holder *string
	if err := db.Get(&holder, `SELECT reservation FROM nodes WHERE id = $1`, n.ID); err != nil || holder == nil || *holder != "conductor-7" {
		t.Errorf("the update touched the lock columns: %v %v", holder, err)
	}
}

// TestConcurrentPatchesKeepEveryChange: each patch reads, modifies and
// writes the whole extra object; without the row lock some would be lost.
func TestConcurrentPatchesKeepEveryChange(t *testing.T) {
	t.Parallel()
	c, ctx := newConductor(t), context.Background()
	n := seedNode(t, c)
	const writers = 24
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.UpdateNode(ctx, n.UUID, patch("add", fmt.Sprintf("/extra/k%02d", i), fmt.Sprint(i)), conductor.NodeUpdate{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.GetNode(ctx, n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Extra) != writers {
		t.Errorf("extra has %d keys after %d concurrent patches, want all: %v", len(got.Extra), writers, got.Extra)
	}
}
