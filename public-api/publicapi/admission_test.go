package publicapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/public-api/publicapi"
)

// send makes a request from any goroutine and returns its status (0 when it
// failed to complete).
func (s *server) send(method, path, body string, headers []string) int {
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdmissionQueuesDatabaseRequests holds the only admission slot with a
// PATCH blocked on the node's row lock, and checks that a read waits for
// its turn instead of running beside it, then is served.
func TestAdmissionQueuesDatabaseRequests(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, publicapi.WithConcurrency(1))
	id := s.createNode(t, `{"driver": "fake", "name": "queued"}`)
	headers := latest(t)

	tx, err := s.DB.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT 1 FROM nodes WHERE uuid = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	patched := make(chan int, 1)
	go func() {
		patched <- s.send("PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/extra/k", "value": "v"}]`, headers)
	}()
	waitForBlockedQuery(t, s, "FOR UPDATE")

	read := make(chan int, 1)
	go func() { read <- s.send("GET", "/v1/nodes?limit=1", "", headers) }()
	select {
	case status := <-read:
		t.Fatalf("the read was served (status %d) while the only slot was held", status)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if status := <-patched; status != http.StatusOK {
		t.Fatalf("PATCH: status %d, want 200", status)
	}
	if status := <-read; status != http.StatusOK {
		t.Fatalf("queued read: status %d, want 200", status)
	}
}

// waitForBlockedQuery waits until a backend of the test's database waits
// on a lock while running a query containing text.
func waitForBlockedQuery(t *testing.T, s *server, text string) {
	t.Helper()
	waitForRow(t, s, "no query became blocked", `SELECT count(*) > 0 FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, text)
}

// waitForRow polls query (one boolean) until it is true, or fails with
// what after 10 s.
func waitForRow(t *testing.T, s *server, what, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		if err := s.DB.Get(&ok, query, args...); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowBMCHoldsNoAdmissionSlot checks that a synchronous BMC call, which
// may take as long as the BMC does, is not admitted: with one slot, reads
// are served while it runs.
func TestSlowBMCHoldsNoAdmissionSlot(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, publicapi.WithConcurrency(1))
	id := s.createNode(t, `{"driver": "fake", "driver_info": {"fake_latency": "3s"}}`)
	headers := latest(t)

	bootDevice := make(chan int, 1)
	go func() {
		bootDevice <- s.send("PUT", "/v1/nodes/"+id+"/management/boot_device", `{"boot_device": "pxe"}`, headers)
	}()
	waitForSyncCall(t, s, id)
	for range 3 {
		if status := s.send("GET", "/v1/nodes/"+id, "", headers); status != http.StatusOK {
			t.Fatalf("show: status %d, want 200", status)
		}
	}
	select {
	case status := <-bootDevice:
		t.Fatalf("the BMC call ended (status %d) before the reads were served; it should still be running", status)
	default:
	}
	if status := <-bootDevice; status != http.StatusNoContent {
		t.Fatalf("boot device: status %d, want 204", status)
	}
}

// waitForSyncCall waits until the node's lock is taken, which the
// conductor does before setting the boot device.
func waitForSyncCall(t *testing.T, s *server, id string) {
	t.Helper()
	waitForRow(t, s, "the BMC call never started", `SELECT reservation IS NOT NULL FROM nodes WHERE uuid = $1`, id)
}
