package agentapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// TestBadInventories: hostile or broken inventories get a precise 4xx and
// write nothing, even with discovery on (which would enroll a node from a
// valid one).
func TestBadInventories(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	seedNode(t, db, nodeSeed{state: conductor.StateInspectWait, macs: []string{"52:54:00:00:00:01"}})
	s := newStack(t, db, stackOptions{discovery: true})
	good := inv{macs: []string{"52:54:00:00:00:01"}}

	tenMB := bytes.Repeat([]byte(" "), 10<<20)
	manyInterfaces := []byte(`{"interfaces": [` + strings.Repeat(`{},`, 99_999) + `{}]}`)
	deep := []byte(`{"interfaces": [{"mac_address": "52:54:00:00:00:01", "lldp": ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]}`)
	withMember := func(k string, v any) []byte { return inv{macs: good.macs, extra: map[string]any{k: v}}.json() }
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		says   string
	}{
		{"empty", []byte(""), 400, "empty"},
		{"garbage", []byte("<xml/>"), 400, "syntax error at byte 1"},
		{"truncated", good.json()[:200], 400, "truncated"},
		{"trailing data", append(good.json(), []byte(`{}`)...), 400, "after the document"},
		{"a list", []byte(`[]`), 400, "expected an object"},
		{"null", []byte(`null`), 400, "expected a JSON object"},
		{"10 MB", tenMB, 413, "larger than"},
		{"100,000 interfaces", manyInterfaces, 400, "interfaces: more than 4096 elements"},
		{"nested 40 deep", deep, 400, "nested deeper than 32 levels"},
		{"MACs like zz only", inv{macs: []string{"zz", "00:11"}}.json(), 400, "nothing to identify the machine"},
		{"duplicate MACs", inv{macs: []string{"52:54:00:00:00:07", "52-54-00-00-00-07"}}.json(), 400, "interfaces[0] and interfaces[1] have the same MAC address 52:54:00:00:00:07"},
		{"no interfaces", inv{dropKey: "interfaces"}.json(), 400, "interfaces is required"},
		{"interface without a MAC", []byte(`{"interfaces": [{"name": "eth0"}]}`), 400, "interfaces[0].mac_address is required"},
		{"interfaces not a list", withMember("interfaces", "eth0"), 400, "Invalid value for interfaces: expected a list, got JSON string"},
		{"cpu count a string", withMember("cpu", map[string]any{"count": "8"}), 400, "Invalid value for cpu.count: expected an integer, got JSON string"},
		{"negative memory", withMember("memory", map[string]any{"physical_mb": -1}), 400, "memory.physical_mb must not be negative"},
		{"MAC a number", []byte(`{"interfaces": [{"mac_address": 5}]}`), 400, "Invalid value for interfaces.mac_address"},
		{"unknown member", withMember("root_password", "x"), 400, `Unknown inventory member "root_password"`},
		{"NUL character", withMember("hostname", "a\u0000b"), 400, "NUL characters"},
		{"invalid UTF-8", []byte(`{"interfaces": [{"mac_address": "52:54:00:00:00:01"}], "hostname": "a` + "\xff\xfe" + `b"}`), 400, "not valid UTF-8"},
		{"a lone surrogate", []byte(`{"interfaces": [{"mac_address": "52:54:00:00:00:01"}], "hostname": "a\ud800b"}`), 400, "surrogate"},
		{"a lone low surrogate", []byte(`{"interfaces": [{"mac_address": "52:54:00:00:00:01"}], "hostname": "\udc00"}`), 400, "surrogate"},
		{"a number jsonb cannot store", []byte(`{"interfaces": [{"mac_address": "52:54:00:00:00:01", "speed_mbps": 1e999999}]}`), 400, "interfaces[0].speed_mbps: number 1e999999 is out of range"},
		{"a thousand-digit number", []byte(`{"interfaces": [{"mac_address": "52:54:00:00:00:01"}], "cpu": {"socket_count": ` + strings.Repeat("9", 1000) + `}}`), 400, "out of range"},
		{"only unknown BMCs", []byte(`{"interfaces": [{"mac_address": "zz"}], "bmc_address": "0.0.0.0", "bmc_v6address": "::/0"}`), 400, "nothing to identify"},
	} {
		before := rowCounts(t, db)
		r := do(t, defaultClient, "POST", s.url+"/v1/lookup", tc.body)
		if r.Status != tc.status || !strings.Contains(faultString(t, r), tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, r.Status, r.Body, tc.status, tc.says)
		}
		if after := rowCounts(t, db); !equalCounts(before, after) {
			t.Errorf("%s: rows written: %v -> %v", tc.name, before, after)
		}
	}

	// A body without a Content-Length is cut at the cap too.
	req, _ := http.NewRequest("POST", s.url+"/v1/lookup", io.MultiReader(bytes.NewReader(good.json()[:10]), bytes.NewReader(tenMB)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked 10 MB: %d, want 413", resp.StatusCode)
	}
	// Checkins are capped lower than inventories.
	n := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait})
	tok := mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, time.Hour)
	big := []byte(`{"agent_version": "1", "status": "idle", "last_command": {"name": "clean", "status": "failed", "error": "` + strings.Repeat("x", 70<<10) + `"}}`)
	if r := do(t, defaultClient, "POST", s.url+"/v1/checkin", big, "Authorization", "Bearer "+tok); r.Status != 413 {
		t.Errorf("70 KiB checkin: %d, want 413", r.Status)
	}
	if st := stateOf(t, db, n); st != conductor.StateCleanWait {
		t.Errorf("an oversized checkin moved the node to %s", st)
	}
	// IPA inventories tolerate what IPA's collectors add, at any level.
	ipa := map[string]any{"inventory": inv{macs: good.macs, extra: map[string]any{"future_field": 1}}.doc(), "numa_topology": map[string]any{"ram": []any{}}}
	ipa["inventory"].(map[string]any)["interfaces"].([]any)[0].(map[string]any)["new_nic_field"] = true
	b, _ := json.Marshal(ipa)
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", b); r.Status != 202 {
		t.Errorf("IPA inspection data with new members: %d %s", r.Status, r.Body)
	}
}

// faultString is the client message of an error in Ironic's format.
func faultString(t testing.TB, r response) string {
	t.Helper()
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	var inner struct {
		FaultString string `json:"faultstring"`
	}
	if json.Unmarshal(r.Body, &outer) != nil || json.Unmarshal([]byte(outer.ErrorMessage), &inner) != nil {
		return string(r.Body)
	}
	return inner.FaultString
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRateLimitPerSource: each source address has its own token bucket;
// beyond it, 429 with Retry-After, while other sources are served.
func TestRateLimitPerSource(t *testing.T) {
	t.Parallel()
	s := newStack(t, pgtest.NewDB(t), stackOptions{api: agentapi.Options{RateLimit: 1}}) // burst 2
	noisy, quiet := agentClient("127.0.0.2"), agentClient("127.0.0.3")
	for i := 0; i < 2; i++ {
		if r := do(t, noisy, "GET", s.url+"/", nil); r.Status != 200 {
			t.Fatalf("request %d within the burst: %d", i+1, r.Status)
		}
	}
	r := do(t, noisy, "GET", s.url+"/v1/lookup?addresses=52:54:00:00:00:01", nil)
	if r.Status != 429 {
		t.Fatalf("beyond the burst: %d, want 429", r.Status)
	}
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 2 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if r := do(t, noisy, "GET", s.url+"/no/such/path", nil); r.Status != 429 {
		t.Errorf("unknown paths escape the limit: %d", r.Status)
	}
	if r := do(t, quiet, "GET", s.url+"/", nil); r.Status != 200 {
		t.Errorf("another source was limited: %d", r.Status)
	}
	if r := do(t, noisy, "GET", s.url+"/healthz", nil); r.Status != 200 {
		t.Errorf("health probe limited: %d", r.Status)
	}
}

// TestInFlightLimit: requests being served hold the in-flight slots, and
// beyond the configured number the next gets 503 at once; hosts still
// sending their bodies hold none.
func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{api: agentapi.Options{MaxInFlight: 2}})
	node := seedNode(t, db, nodeSeed{state: "wait call-back", macs: []string{"52:54:00:00:0f:01"}})
	tok := s.mustLookup(t, inv{macs: []string{"52:54:00:00:0f:01"}})
	if r := s.checkin(t, tok, nil); r.Status != 200 {
		t.Fatalf("first checkin: %d %s", r.Status, r.Body)
	}

	// Slow senders: four lookups whose bodies never finish.
	var writers []*io.PipeWriter
	slowDone := make(chan int, 4)
	for range 4 {
		writers = append(writers, slowUpload(s, slowDone))
	}
	if r := do(t, defaultClient, "GET", s.url+"/", nil); r.Status != 200 {
		t.Fatalf("with four bodies still coming and two slots: %d, want 200", r.Status)
	}

	// Two checkins held up in the database take both slots.
	tx, err := db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT 1 FROM agent_checkins WHERE node_id = $1 FOR UPDATE`, node.ID); err != nil {
		t.Fatal(err)
	}
	held := make(chan int, 2)
	for range 2 {
		go func() { held <- s.checkin(t, tok, nil).Status }()
	}
	waitFor(t, "two checkins waiting in the database", func() bool {
		return count(t, db, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 2
	})
	start := time.Now()
	r := do(t, defaultClient, "GET", s.url+"/", nil)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || time.Since(start) > time.Second {
		t.Errorf("third request: %d after %v, want 503 at once with Retry-After", r.Status, time.Since(start))
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if status := <-held; status != 200 {
			t.Errorf("held checkin: %d, want 200", status)
		}
	}
	for _, w := range writers {
		_ = w.CloseWithError(io.ErrUnexpectedEOF)
	}
	for range 4 {
		<-slowDone
	}
	waitFor(t, "the slots to free up", func() bool { return do(t, defaultClient, "GET", s.url+"/", nil).Status == 200 })
}

// TestSourceAllowListAndProxies: only allowed sources are served;
// X-Forwarded-For counts only from a trusted proxy.
func TestSourceAllowListAndProxies(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	allowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	direct := newStack(t, db, stackOptions{api: agentapi.Options{AllowedSources: allowed}})
	proxied := newStack(t, db, stackOptions{api: agentapi.Options{AllowedSources: allowed, TrustedProxies: []string{"127.0.0.3/32"}, RateLimit: 1}})
	agent, stranger, proxy := agentClient("127.0.0.2"), agentClient("127.0.0.4"), agentClient("127.0.0.3")
	for _, tc := range []struct {
		name   string
		s      *stack
		client *http.Client
		xff    string
		want   int
	}{
		{"allowed source", direct, agent, "", 200},
		{"other source", direct, stranger, "", 403},
		{"other source claiming an allowed one", direct, stranger, "127.0.0.2", 403},
		{"untrusted proxy", direct, proxy, "127.0.0.2", 403},
		{"trusted proxy for an allowed agent", proxied, proxy, "127.0.0.2", 200},
		{"trusted proxy for another agent", proxied, proxy, "10.9.9.9", 403},
		{"spoofed header behind the proxy", proxied, proxy, "127.0.0.2, 10.9.9.9", 403},
		{"unknown paths too", direct, stranger, "", 403},
	} {
		path := "/"
		if tc.name == "unknown paths too" {
			path = "/v1/nodes"
		}
		r := do(t, tc.client, "GET", tc.s.url+path, nil, "X-Forwarded-For", tc.xff)
		if r.Status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, r.Status, tc.want)
		}
	}
	if r := do(t, stranger, "GET", direct.url+"/healthz", nil); r.Status != 200 {
		t.Errorf("health probe from outside the allow-list: %d", r.Status)
	}
	// Behind the trusted proxy, the rate limit is per agent, not per proxy.
	wide := newStack(t, db, stackOptions{api: agentapi.Options{TrustedProxies: []string{"127.0.0.3/32"}, RateLimit: 1}})
	for i := 0; i < 2; i++ {
		do(t, proxy, "GET", wide.url+"/", nil, "X-Forwarded-For", "10.0.0.1")
	}
	if r := do(t, proxy, "GET", wide.url+"/", nil, "X-Forwarded-For", "10.0.0.1"); r.Status != 429 {
		t.Errorf("agent 10.0.0.1 beyond its burst: %d, want 429", r.Status)
	}
	if r := do(t, proxy, "GET", wide.url+"/", nil, "X-Forwarded-For", "10.0.0.2"); r.Status != 200 {
		t.Errorf("agent 10.0.0.2 behind the same proxy: %d, want 200", r.Status)
	}
}

// TestBodyReadersBounded: bodies being read are bounded per source (and in
// all), so slow senders cannot fill memory: beyond its share a source gets
// 503 at once for that kind of body, while its other requests go on.
func TestBodyReadersBounded(t *testing.T) {
	t.Parallel()
	s := newStack(t, pgtest.NewDB(t), stackOptions{api: agentapi.Options{MaxInFlight: 16}}) // one inventory reader per source
	slowDone := make(chan int, 1)
	pw := slowUpload(s, slowDone)
	waitFor(t, "the slow upload to hold the source's reader", func() bool {
		return s.lookup(t, inv{macs: []string{"52:54:00:00:0a:01"}}).Status == 503
	})
	r := s.lookup(t, inv{macs: []string{"52:54:00:00:0a:01"}})
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("second inventory from the source: %d, want 503 with Retry-After", r.Status)
	}
	if r := s.checkin(t, "not-a-token", nil); r.Status != 401 {
		t.Errorf("a checkin from the same source: %d, want 401 (read and judged, not refused as busy)", r.Status)
	}
	_ = pw.CloseWithError(io.ErrUnexpectedEOF)
	<-slowDone
	waitFor(t, "the reader to be free", func() bool {
		return s.lookup(t, inv{macs: []string{"52:54:00:00:0a:01"}}).Status == 404
	})
}

// slowUpload starts a lookup whose inventory arrives slowly: the start of
// it now, the rest never. Closing the returned writer ends the request;
// its status (0 when it failed) then goes to done.
func slowUpload(s *stack, done chan<- int) *io.PipeWriter {
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.url+"/v1/lookup", pr)
	go func() { // ends when the writer is closed
		resp, err := agentClient("").Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	_, _ = pw.Write([]byte(`{"interfaces": [`))
	return pw
}
