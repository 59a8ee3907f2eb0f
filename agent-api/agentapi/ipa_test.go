package agentapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// ipaLookup is IPA's lookup; it returns the agent token.
func (s *stack) ipaLookup(t *testing.T, query string) string {
	t.Helper()
	r := do(t, defaultClient, "GET", s.url+"/v1/lookup?"+query, nil,
		"Content-Type", "application/json", "X-OpenStack-Ironic-API-Version", "1.62")
	if r.Status != 200 {
		t.Fatalf("IPA lookup: %d %s", r.Status, r.Body)
	}
	tok, _ := r.json(t)["config"].(map[string]any)["agent_token"].(string)
	return tok
}

// TestIPAHeartbeat: IPA's heartbeat with the token from its lookup is 202
// and records the agent; in wait call-back it does not resume the node
// (Ferric does not drive IPA: nothing wrote the image), which keeps
// waiting, its history saying why, once. Every token fault is 400
// (Ironic's answer) and records nothing.
func TestIPAHeartbeat(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	n := seedNode(t, db, nodeSeed{state: conductor.StateAvailable, driverInfo: map[string]any{"fake_agent": true}, macs: []string{"52:54:00:00:00:01"}})
	other := seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback})
	provision(t, cond, n, "active")
	waitState(t, db, n, conductor.StateWaitCallback)
	tok := s.ipaLookup(t, "addresses=52:54:00:00:00:01")
	if len(tok) < 32 {
		t.Fatalf("IPA got token %q", tok)
	}
	gen := int64(count(t, db, `SELECT agent_token_generation FROM nodes WHERE id = $1`, n.ID))

	before := rowCounts(t, db)
	for name, hb := range map[string]struct{ node, token, callback string }{
		"missing token":                         {n.UUID, "", "http://10.20.0.10:9999"},
		"forged token":                          {n.UUID, mintAgentToken(t, otherKeys, n.UUID, gen, token.AudienceAgent, time.Hour), "http://10.20.0.10:9999"},
		"another node's token":                  {n.UUID, mintAgentToken(t, agentKeys, other.UUID, 1, token.AudienceAgent, time.Hour), "http://10.20.0.10:9999"},
		"token for this node on another's path": {other.UUID, tok, "http://10.20.0.10:9999"},
		"expired":                               {n.UUID, mintAgentToken(t, agentKeys, n.UUID, gen, token.AudienceAgent, -time.Minute), "http://10.20.0.10:9999"},
		"revoked":                               {n.UUID, mintAgentToken(t, agentKeys, n.UUID, gen-1, token.AudienceAgent, time.Hour), "http://10.20.0.10:9999"},
		"operator audience":                     {n.UUID, mintAgentToken(t, agentKeys, n.UUID, gen, token.AudiencePublic, time.Hour), "http://10.20.0.10:9999"},
		"callback not http":                     {n.UUID, tok, "ftp://10.20.0.10/"},
	} {
		if r := s.heartbeat(t, hb.node, hb.token, hb.callback); r.Status != 400 {
			t.Errorf("%s: %d %s, want 400", name, r.Status, r.Body)
		}
	}
	for _, body := range []string{
		`{"callback_url": "http://10.20.0.10:9999", "agent_token": "` + tok + `"}`, // no version
		`{"callback_url": "http://10.20.0.10:9999", "agent_token": "` + tok + `", "agent_version": "10", "surprise": 1}`,
		`{"callback_url": "http://10.20.0.10:9999", "agent_token": 12}`,
		`not json`,
	} {
		if r := do(t, defaultClient, "POST", s.url+"/v1/heartbeat/"+n.UUID, []byte(body)); r.Status != 400 {
			t.Errorf("heartbeat %s: %d, want 400", body, r.Status)
		}
	}
	after := rowCounts(t, db)
	for table, c := range before {
		if after[table] != c {
			t.Errorf("%s: %d rows before the bad heartbeats, %d after", table, c, after[table])
		}
	}
	if st := stateOf(t, db, n); st != conductor.StateWaitCallback {
		t.Fatalf("bad heartbeats moved the node to %s", st)
	}

	for range 2 {
		r := s.heartbeat(t, n.UUID, tok, "http://10.20.0.10:9999")
		if r.Status != 202 || len(r.Body) != 0 {
			t.Fatalf("heartbeat: %d %q, want 202 without a body", r.Status, r.Body)
		}
	}
	a, err := store.GetAgentCheckin(context.Background(), db, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Protocol != "ipa" || a.AgentURL == nil || *a.AgentURL != "http://10.20.0.10:9999" || *a.AgentVersion != "10.1.0" || a.SourceAddress != "127.0.0.1" {
		t.Errorf("recorded heartbeat %+v", a)
	}
	// A resumption would have moved the node and queued its task before
	// the heartbeat was answered.
	if st := stateOf(t, db, n); st != conductor.StateWaitCallback {
		t.Errorf("IPA heartbeats moved the node to %s; nothing wrote its image", st)
	}
	if c := count(t, db, `SELECT count(*) FROM tasks WHERE node_id = $1 AND pool = 'agent'`, n.ID); c != 0 {
		t.Errorf("%d resumption tasks queued by IPA heartbeats", c)
	}
	notes := 0
	for _, e := range history(t, db, n) {
		if strings.Contains(e, "does not drive IPA") && strings.Contains(e, "write the image") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d history notes that IPA is not driven, want 1: %q", notes, history(t, db, n))
	}
}

// TestReportingRamdiskHeartbeat: a ramdisk that does the work itself and
// reports it (agent_status, Ironic API 1.72) resumes the node at "end".
func TestReportingRamdiskHeartbeat(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	n := seedNode(t, db, nodeSeed{state: conductor.StateAvailable, driverInfo: map[string]any{"fake_agent": true}, macs: []string{"52:54:00:00:00:01"}})
	provision(t, cond, n, "active")
	waitState(t, db, n, conductor.StateWaitCallback)
	tok := s.ipaLookup(t, "addresses=52:54:00:00:00:01")
	if r := s.reportingHeartbeat(t, n.UUID, tok, "start"); r.Status != 202 {
		t.Fatalf("agent_status start: %d %s", r.Status, r.Body)
	}
	if st := stateOf(t, db, n); st != conductor.StateWaitCallback {
		t.Fatalf("agent_status start moved the node to %s", st)
	}
	if r := s.reportingHeartbeat(t, n.UUID, tok, "end"); r.Status != 202 {
		t.Fatalf("agent_status end: %d %s", r.Status, r.Body)
	}
	waitState(t, db, n, conductor.StateActive)
	// The reboot that ended the deploy ended the agent's boot: its token
	// is revoked (Ironic wipes it on power off and reboot).
	if r := s.heartbeat(t, n.UUID, tok, "http://10.20.0.10:9999"); r.Status != 400 {
		t.Errorf("heartbeat with the token of the finished boot: %d, want 400", r.Status)
	}
}

// TestIPACallbackURLIsFixedPerBoot: within one boot the callback URL may
// not change (Ironic's rule). A deploying node records heartbeats without
// moving, so the rule is seen on its own.
func TestIPACallbackURLIsFixedPerBoot(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	n := seedNode(t, db, nodeSeed{state: conductor.StateDeploying, macs: []string{"52:54:00:00:00:02"}})
	tok := s.ipaLookup(t, "addresses=52:54:00:00:00:02")
	if r := s.heartbeat(t, n.UUID, tok, "http://10.20.0.10:9999"); r.Status != 202 {
		t.Fatalf("first heartbeat: %d %s", r.Status, r.Body)
	}
	if r := s.heartbeat(t, n.UUID, tok, "http://10.66.6.6:9999"); r.Status != 400 {
		t.Errorf("changed callback_url: %d, want 400", r.Status)
	}
	if r := s.heartbeat(t, n.UUID, tok, "http://10.20.0.10:9999"); r.Status != 202 {
		t.Errorf("same callback_url again: %d, want 202", r.Status)
	}
	if st := stateOf(t, db, n); st != conductor.StateDeploying {
		t.Errorf("heartbeats moved a deploying node to %s", st)
	}
}

// TestIPAHeartbeatBusy: a report that would resume a node whose lock is
// held answers 409 (the agent retries soon), and with the agent queue full
// 503, both without changing the node. A bare IPA heartbeat resumes
// nothing, so it is recorded (202) whoever holds the lock.
func TestIPAHeartbeatBusy(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	locked := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait})
	if _, err := db.Exec(`UPDATE nodes SET reservation = 'conductor-2', reservation_expires_at = now() + interval '1 minute' WHERE id = $1`, locked.ID); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, db, stackOptions{})
	tok := mintAgentToken(t, agentKeys, locked.UUID, 1, token.AudienceAgent, time.Hour)
	if r := s.heartbeat(t, locked.UUID, tok, "http://10.20.0.10:9999"); r.Status != 202 {
		t.Errorf("IPA heartbeat on a locked node: %d %s, want 202 (recorded)", r.Status, r.Body)
	}
	if r := s.reportingHeartbeat(t, locked.UUID, tok, "end"); r.Status != 409 {
		t.Errorf("agent_status end on a locked node: %d %s, want 409", r.Status, r.Body)
	}
	if r := s.checkin(t, tok, &command{"clean", "success", ""}); r.Status != 409 {
		t.Errorf("checkin on a locked node: %d %s, want 409", r.Status, r.Body)
	}
	if st := stateOf(t, db, locked); st != conductor.StateCleanWait {
		t.Errorf("locked node moved to %s", st)
	}

	// A queue limit of one, already reached.
	full := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait})
	if _, err := db.Exec(`INSERT INTO tasks (kind, pool, args, timeout_ms) VALUES ('provision', 'agent', '{}', 1000)`); err != nil {
		t.Fatal(err)
	}
	busy := newStack(t, db, stackOptions{queueLimit: 1})
	r := busy.reportingHeartbeat(t, full.UUID, mintAgentToken(t, agentKeys, full.UUID, 1, token.AudienceAgent, time.Hour), "end")
	if r.Status != 503 || stateOf(t, db, full) != conductor.StateCleanWait {
		t.Errorf("heartbeat with the agent queue full: %d %s, node %s", r.Status, r.Body, stateOf(t, db, full))
	}
	if c := count(t, db, `SELECT count(*) FROM tasks`); c != 1 {
		t.Errorf("%d tasks after a refused heartbeat, want 1", c)
	}
}

// TestContinueInspection: IPA's inventory upload, sent without a
// Content-Type, stores the inventory and IPA's other data (not the logs),
// updates the properties and resumes the inspection.
func TestContinueInspection(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	machine := inv{macs: []string{"52:54:00:00:00:01", "52:54:00:00:00:02"}, bmc: "10.10.0.8"}
	n := seedNode(t, db, nodeSeed{state: conductor.StateManageable, driverInfo: map[string]any{"fake_agent": true}, macs: machine.macs[1:]})
	cleaning := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait, macs: []string{"52:54:00:00:00:09"}})
	provision(t, cond, n, "inspect")
	waitState(t, db, n, conductor.StateInspectWait)

	r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", machine.ipaData())
	if r.Status != 202 || r.json(t)["uuid"] != n.UUID {
		t.Fatalf("continue_inspection: %d %s", r.Status, r.Body)
	}
	waitState(t, db, n, conductor.StateManageable)
	inv, err := cond.NodeInventory(context.Background(), n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	plugin := inv["plugin_data"].(map[string]any)
	if plugin["root_disk"] == nil || plugin["logs"] != nil || inv["inventory"].(map[string]any)["bmc_address"] != "10.10.0.8" {
		t.Errorf("stored inspection data: %v", inv)
	}
	var localGB int
	if err := db.Get(&localGB, `SELECT (properties->>'local_gb')::int FROM nodes WHERE id = $1`, n.ID); err != nil || localGB != 445 {
		t.Errorf("local_gb %d (%v), want 445 from root_disk", localGB, err)
	}
	// Outside inspection (and without discovery), inventories are refused.
	for name, body := range map[string][]byte{
		"node cleaning":   inv2(t, []string{"52:54:00:00:00:09"}),
		"node unknown":    inv2(t, []string{"52:54:00:00:00:77"}),
		"node inspected ": machine.ipaData(),
	} {
		before := rowCounts(t, db)
		if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", body); r.Status != 404 {
			t.Errorf("%s: %d %s, want 404", name, r.Status, r.Body)
		}
		if after := rowCounts(t, db); after["node_inventories"] != before["node_inventories"] {
			t.Errorf("%s: inventory stored", name)
		}
	}
	if c := count(t, db, `SELECT count(*) FROM node_inventories WHERE node_id = $1`, cleaning.ID); c != 0 {
		t.Error("a cleaning node's inventory was replaced by an unauthenticated upload")
	}
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", []byte(`{"inventory": {"interfaces": []}}`)); r.Status != 400 {
		t.Errorf("no interfaces: %d, want 400", r.Status)
	}
}

func inv2(t *testing.T, macs []string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"inventory": inv{macs: macs}.doc()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIPAAgentStatus: ramdisks that report their own progress (agent_status,
// without a callback URL) keep the node waiting at "start", resume it at
// "end" and fail it at "error".
func TestIPAAgentStatus(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	for status, want := range map[string]string{
		"start": conductor.StateCleanWait,
		"end":   conductor.StateCleaning,
		"error": conductor.StateCleanFailed,
	} {
		n := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait})
		body, _ := json.Marshal(map[string]any{"agent_token": mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, time.Hour),
			"agent_status": status, "agent_status_message": "anaconda: " + status, "callback_url": ""})
		if r := do(t, defaultClient, "POST", s.url+"/v1/heartbeat/"+n.UUID, body); r.Status != 202 {
			t.Fatalf("agent_status %s: %d %s", status, r.Status, r.Body)
		}
		if got := stateOf(t, db, n); got != want {
			t.Errorf("agent_status %s: node in %s, want %s", status, got, want)
		}
	}
	var lastError string
	_ = db.Get(&lastError, `SELECT last_error FROM nodes WHERE provision_state = 'clean failed'`)
	if lastError != "Agent reported that clean failed: anaconda: error" {
		t.Errorf("last_error %q", lastError)
	}
}

// TestIPATokenOutlivesTheTTL: IPA cannot renew its token, so the token its
// lookup reveals lasts a week whatever FERRIC_AGENT_TOKEN_TTL says; a
// native lookup's lasts that TTL (and checkins renew it).
func TestIPATokenOutlivesTheTTL(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{tokenTTL: time.Minute})
	seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, macs: []string{"52:54:00:00:0e:01"}})
	seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, macs: []string{"52:54:00:00:0e:02"}})
	lifetime := func(tok string) time.Duration {
		t.Helper()
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWT: %q", tok)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct{ Exp, Iat int64 }
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		return time.Duration(claims.Exp-claims.Iat) * time.Second
	}
	if got := lifetime(s.ipaLookup(t, "addresses=52:54:00:00:0e:01")); got != 7*24*time.Hour {
		t.Errorf("IPA token lives %v, want a week", got)
	}
	if got := lifetime(s.mustLookup(t, inv{macs: []string{"52:54:00:00:0e:02"}})); got != time.Minute {
		t.Errorf("native token lives %v, want the configured minute", got)
	}
}

// TestOneInventoryPerBoot: during inspection, the inventory stored is the
// first of the boot (the lookup that wins the reveal, or the first
// upload); another sent later, which anyone knowing the MACs could, changes
// nothing and is recorded in the node's history.
func TestOneInventoryPerBoot(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	cpusOf := func(n testNode) int {
		t.Helper()
		return count(t, db, `SELECT (inventory->'cpu'->>'count')::int FROM node_inventories WHERE node_id = $1`, n.ID)
	}

	// Native: the lookup that reveals the token stores its inventory.
	native := seedNode(t, db, nodeSeed{state: conductor.StateInspectWait, macs: []string{"52:54:00:00:0d:01"}})
	s.mustLookup(t, inv{macs: []string{"52:54:00:00:0d:01"}, cpus: 8})
	if r := s.lookup(t, inv{macs: []string{"52:54:00:00:0d:01"}, cpus: 99}); r.Status != 200 || r.json(t)["token"] != "******" {
		t.Fatalf("second lookup: %d %s", r.Status, r.Body)
	}
	if c := cpusOf(native); c != 8 {
		t.Errorf("native: stored inventory says %d CPUs, want the first lookup's 8", c)
	}

	// IPA: the second upload of the boot is refused.
	ipa := seedNode(t, db, nodeSeed{state: conductor.StateInspecting, macs: []string{"52:54:00:00:0d:02"}})
	first := inv{macs: []string{"52:54:00:00:0d:02"}, cpus: 8}.ipaData()
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", first); r.Status != 202 {
		t.Fatalf("first upload: %d %s", r.Status, r.Body)
	}
	second := inv{macs: []string{"52:54:00:00:0d:02"}, cpus: 99}.ipaData()
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", second); r.Status != 404 {
		t.Errorf("second upload of the boot: %d %s, want 404", r.Status, r.Body)
	}
	if c := cpusOf(ipa); c != 8 {
		t.Errorf("IPA: stored inventory says %d CPUs, want the first upload's 8", c)
	}
	if !hasEvent(history(t, db, ipa), "was stored already") {
		t.Errorf("history %q does not record the refused upload", history(t, db, ipa))
	}
	// A new boot (the generation moves on) takes a new inventory.
	if _, err := db.Exec(`UPDATE nodes SET agent_token_generation = agent_token_generation + 1 WHERE id = $1`, ipa.ID); err != nil {
		t.Fatal(err)
	}
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", second); r.Status != 202 {
		t.Errorf("upload of a new boot: %d %s", r.Status, r.Body)
	}
	if c := cpusOf(ipa); c != 99 {
		t.Errorf("after a new boot: %d CPUs, want 99", c)
	}
}

// TestIPAVerifyCAIsFixedPerBoot: the CA IPA sends (agent_verify_ca) is
// recorded and, like the callback URL, may not change within a boot.
func TestIPAVerifyCAIsFixedPerBoot(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	n := seedNode(t, db, nodeSeed{state: conductor.StateDeploying, macs: []string{"52:54:00:00:00:03"}})
	tok := s.ipaLookup(t, "addresses=52:54:00:00:00:03")
	beat := func(ca string) int {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"callback_url": "https://10.20.0.11:9999", "agent_token": tok,
			"agent_version": "10.1.0", "agent_verify_ca": ca})
		return do(t, defaultClient, "POST", s.url+"/v1/heartbeat/"+n.UUID, b,
			"Content-Type", "application/json", "X-OpenStack-Ironic-API-Version", "1.68").Status
	}
	if st := beat("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----"); st != 202 {
		t.Fatalf("first heartbeat: %d", st)
	}
	if got := count(t, db, `SELECT count(*) FROM agent_checkins WHERE node_id = $1 AND agent_verify_ca LIKE '%AAA%'`, n.ID); got != 1 {
		t.Error("agent_verify_ca not recorded")
	}
	if st := beat("-----BEGIN CERTIFICATE-----\nEVIL\n-----END CERTIFICATE-----"); st != 400 {
		t.Errorf("changed agent_verify_ca: %d, want 400", st)
	}
	if got := count(t, db, `SELECT count(*) FROM agent_checkins WHERE node_id = $1 AND agent_verify_ca LIKE '%EVIL%'`, n.ID); got != 0 {
		t.Error("the changed CA was recorded")
	}
	if st := beat("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----"); st != 202 {
		t.Errorf("same CA again: %d, want 202", st)
	}
}
