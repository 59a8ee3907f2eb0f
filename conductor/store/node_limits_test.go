package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

// TestNodeDocumentCaps: each JSON document of a node is capped on every
// write (migration 00010, at store.MaxNodeDocumentBytes), so repeated PATCHes
// cannot grow a row without bound; the refusal is a 400 naming the document.
// A node already over a cap (stored before it) can still be worked on.
func TestNodeDocumentCaps(t *testing.T) {
	t.Parallel()
	db, ctx := pgtest.NewDB(t), context.Background()
	for field, limit := range store.MaxNodeDocumentBytes {
		n := mustNode(t, db, &store.Node{})
		// {"k": "xxx..."} is 9 bytes of jsonb text around the string.
		fits := store.JSONObject{"k": strings.Repeat("x", limit-9)}
		over := store.JSONObject{"k": strings.Repeat("x", limit-8)}
		set := func(doc store.JSONObject) error { // as a PATCH writes it
			got, err := store.GetNodeByID(ctx, db, n.ID)
			if err != nil {
				t.Fatal(err)
			}
			*map[string]*store.JSONObject{"extra": &got.Extra, "properties": &got.Properties,
				"driver_info": &got.DriverInfo, "instance_info": &got.InstanceInfo}[field] = doc
			return store.UpdateNode(ctx, db, got)
		}
		if err := set(fits); err != nil {
			t.Errorf("%s of exactly %d bytes: %v", field, limit, err)
		}
		err := set(over)
		if fault.KindOf(err) != fault.Invalid || !strings.Contains(fault.Message(err), field) {
			t.Errorf("%s one byte over: %v, want invalid naming %s", field, err, field)
		}
		if err := store.CheckNodeDocument(field, over); fault.KindOf(err) != fault.Invalid {
			t.Errorf("CheckNodeDocument(%s) one byte over: %v", field, err)
		}
		if err := store.CheckNodeDocument(field, store.JSONObject{"k": "small"}); err != nil {
			t.Errorf("CheckNodeDocument(%s) small: %v", field, err)
		}
		// Growing it a key at a time, as repeated PATCHes do, stops at the cap.
		if _, err := db.ExecContext(ctx, `UPDATE nodes SET `+field+` = `+field+` || '{"more": 1}' WHERE id = $1`, n.ID); err == nil {
			t.Errorf("%s grew past its cap", field)
		}
	}
	// A node over a cap from before the caps: other writes go through.
	n := mustNode(t, db, &store.Node{})
	if _, err := db.ExecContext(ctx, `ALTER TABLE nodes DISABLE TRIGGER nodes_document_caps`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE nodes SET extra = jsonb_build_object('k', repeat('x', 100000)) WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE nodes ENABLE TRIGGER nodes_document_caps`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE nodes SET power_state = 'power on', driver_info = '{"a": 1}' WHERE id = $1`, n.ID); err != nil {
		t.Errorf("a write leaving the oversized extra alone was refused: %v", err)
	}
}
