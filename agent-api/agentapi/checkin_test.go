package agentapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// TestCheckinRefusesBadTokens: a checkin with anything but the current
// token of its node is 401, always with the same body, and changes nothing.
func TestCheckinRefusesBadTokens(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	n := seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, macs: []string{"52:54:00:00:00:01"}})
	other := seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback})
	s := newStack(t, db, stackOptions{})
	valid := s.mustLookup(t, inv{macs: []string{"52:54:00:00:00:01"}})

	none := jwt.NewWithClaims(jwt.SigningMethodNone, claimsFor(n.UUID, 1, token.AudienceAgent, time.Hour))
	none.Header["kid"] = "ag1"
	noneToken, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, claimsFor(n.UUID, 1, token.AudienceAgent, time.Hour))
	hs512.Header["kid"] = "ag1"
	hs512Token, _ := hs512.SignedString([]byte("ABCABCABCABCABCABCABCABCABCABCABC"))
	wrongIssuer, _ := agentKeys.Mint(*claimsFor(n.UUID, 1, token.AudienceAgent, time.Hour), "someone-else", token.AudienceAgent, time.Hour, time.Now())

	before := rowCounts(t, db)
	var bodies []string
	for name, header := range map[string]string{
		"no token":            "",
		"not bearer":          "Basic " + valid,
		"garbage":             "Bearer not.a.jwt",
		"wrong audience":      "Bearer " + mintAgentToken(t, agentKeys, n.UUID, 1, token.AudiencePublic, time.Hour),
		"wrong key":           "Bearer " + mintAgentToken(t, otherKeys, n.UUID, 1, token.AudienceAgent, time.Hour),
		"expired":             "Bearer " + mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, -time.Hour),
		"alg none":            "Bearer " + noneToken,
		"HS512":               "Bearer " + hs512Token,
		"wrong issuer":        "Bearer " + wrongIssuer,
		"old generation":      "Bearer " + mintAgentToken(t, agentKeys, n.UUID, 0, token.AudienceAgent, time.Hour),
		"future generation":   "Bearer " + mintAgentToken(t, agentKeys, n.UUID, 2, token.AudienceAgent, time.Hour),
		"node does not exist": "Bearer " + mintAgentToken(t, agentKeys, "6d85703a-565d-469a-96ce-30b6de53079d", 1, token.AudienceAgent, time.Hour),
		"subject not a UUID":  "Bearer " + mintAgentToken(t, agentKeys, "x' OR 1=1", 1, token.AudienceAgent, time.Hour),
	} {
		body := []byte(`{"agent_version": "1", "status": "idle", "last_command": {"name": "deploy", "status": "success"}}`)
		r := do(t, defaultClient, "POST", s.url+"/v1/checkin", body, "Authorization", header)
		if r.Status != 401 {
			t.Errorf("%s: %d %s, want 401", name, r.Status, r.Body)
		}
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", name)
		}
		bodies = append(bodies, string(r.Body))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ: %q vs %q", b, bodies[0])
		}
	}
	after := rowCounts(t, db)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("%s: %d rows before the bad checkins, %d after", table, n, after[table])
		}
	}
	if st := stateOf(t, db, n); st != conductor.StateWaitCallback {
		t.Errorf("node moved to %s", st)
	}
	// A token is for its node only: another node's token does not check in here.
	if r := s.checkin(t, mintAgentToken(t, agentKeys, other.UUID, 1, token.AudienceAgent, time.Hour), nil); r.Status != 200 {
		t.Errorf("the other node's own token: %d", r.Status)
	}
	if r := s.checkin(t, valid, nil); r.Status != 200 {
		t.Fatalf("valid token: %d %s", r.Status, r.Body)
	}
	if c := count(t, db, `SELECT count(*) FROM agent_checkins WHERE node_id = $1 AND agent_version = 'ferric-agent 1.0'`, n.ID); c != 1 {
		t.Errorf("the valid checkin was not recorded (%d rows)", c)
	}
}

func claimsFor(subject string, generation int64, audience string, ttl time.Duration) *token.Claims {
	c := &token.Claims{Generation: generation}
	c.Subject, c.Issuer = subject, testIssuer
	c.Audience = jwt.ClaimStrings{audience}
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(ttl))
	return c
}

// instruction is a checkin's answer.
type instruction struct {
	Action          string         `json:"action"`
	Args            map[string]any `json:"args"`
	CheckinInterval int            `json:"checkin_interval"`
	Token           string         `json:"token"`
}

func mustCheckin(t *testing.T, s *stack, tok string, last *command) instruction {
	t.Helper()
	r := s.checkin(t, tok, last)
	if r.Status != 200 {
		t.Fatalf("checkin: %d %s", r.Status, r.Body)
	}
	var in instruction
	if err := json.Unmarshal(r.Body, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func provision(t *testing.T, c *conductor.Conductor, n testNode, target string) {
	t.Helper()
	if _, err := c.ChangeProvisionState(context.Background(), n.UUID, conductor.ProvisionRequest{Target: target, User: "test"}); err != nil {
		t.Fatalf("provision %s: %v", target, err)
	}
}

func waitState(t *testing.T, db *sqlx.DB, n testNode, state string) {
	t.Helper()
	waitFor(t, "node in "+state, func() bool { return stateOf(t, db, n) == state })
}

// TestDeployThroughCheckins drives a deploy end to end: the operator
// deploys, the conductor boots the agent, the agent looks up, checks in, is
// told to deploy the image, reports success, and the node goes active.
func TestDeployThroughCheckins(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	n := seedNode(t, db, nodeSeed{state: conductor.StateAvailable, driverInfo: map[string]any{"fake_agent": true},
		instanceInfo: map[string]any{"image_source": "http://images/ubuntu.qcow2", "image_checksum": "sha256:abc",
			"image_disk_format": "qcow2", "root_gb": 10, "admin_password": "hunter2"},
		macs: []string{"52:54:00:00:00:01"}})
	if _, err := db.Exec(`UPDATE nodes SET properties = '{"root_device": {"size": ">= 100"}}' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	provision(t, cond, n, "active")
	waitState(t, db, n, conductor.StateWaitCallback)

	tok := s.mustLookup(t, inv{macs: []string{"52:54:00:00:00:01"}})
	in := mustCheckin(t, s, tok, nil)
	if in.Action != agents.ActionDeploy || in.Args["image_source"] != "http://images/ubuntu.qcow2" ||
		in.Args["image_checksum"] != "sha256:abc" || in.Args["root_device"] == nil || in.CheckinInterval != 30 {
		t.Fatalf("first checkin in wait call-back: %+v", in)
	}
	if _, leaked := in.Args["admin_password"]; leaked {
		t.Error("the deploy instructions carry instance_info beyond the image and disk layout")
	}
	if in := mustCheckin(t, s, tok, &command{"deploy", "running", ""}); in.Action != agents.ActionWait {
		t.Errorf("while deploying: %s, want wait", in.Action)
	}
	if stateOf(t, db, n) != conductor.StateWaitCallback {
		t.Fatal("a running command resumed the node")
	}
	if in := mustCheckin(t, s, tok, &command{"deploy", "success", ""}); in.Action != agents.ActionWait {
		t.Errorf("after success: %s, want wait", in.Action)
	}
	waitState(t, db, n, conductor.StateActive)
	if !hasEvent(history(t, db, n), "agent called back") {
		t.Errorf("history %q", history(t, db, n))
	}
}

// TestCleanAndInspectThroughCheckins: cleaning ends in available after the
// agent's clean; inspection stores the inventory from the agent's lookup,
// updates the node's properties and ends in manageable.
func TestCleanAndInspectThroughCheckins(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	machine := inv{macs: []string{"52:54:00:00:00:01"}, serial: "CZ1234ABCD"}
	n := seedNode(t, db, nodeSeed{state: conductor.StateManageable, driverInfo: map[string]any{"fake_agent": true}, macs: machine.macs})

	provision(t, cond, n, "provide")
	waitState(t, db, n, conductor.StateCleanWait)
	tok := s.mustLookup(t, machine)
	if in := mustCheckin(t, s, tok, nil); in.Action != agents.ActionClean {
		t.Fatalf("in clean wait: %s, want clean", in.Action)
	}
	if c := count(t, db, `SELECT count(*) FROM node_inventories WHERE node_id = $1`, n.ID); c != 0 {
		t.Error("a lookup outside inspection stored its inventory")
	}
	mustCheckin(t, s, tok, &command{"clean", "success", ""})
	waitState(t, db, n, conductor.StateAvailable)
	// Cleaning ended by powering the node off: that boot's token is revoked.
	if r := s.checkin(t, tok, nil); r.Status != 401 {
		t.Errorf("checkin with the token of the finished boot: %d, want 401", r.Status)
	}
	// An agent left running on an available node (no fast track) is told
	// to power off.
	setState(t, db, n, conductor.StateCleanWait)
	tok = s.mustLookup(t, machine)
	setState(t, db, n, conductor.StateAvailable)
	if in := mustCheckin(t, s, tok, nil); in.Action != agents.ActionPowerOff {
		t.Errorf("agent on an available node without fast track: %s, want power_off", in.Action)
	}

	setState(t, db, n, conductor.StateManageable)
	provision(t, cond, n, "inspect")
	waitState(t, db, n, conductor.StateInspectWait)
	tok = s.mustLookup(t, machine)
	if in := mustCheckin(t, s, tok, nil); in.Action != agents.ActionInspect {
		t.Fatalf("in inspect wait: %s, want inspect", in.Action)
	}
	mustCheckin(t, s, tok, &command{"inspect", "success", ""})
	waitState(t, db, n, conductor.StateManageable)
	// The inspected machine is powered off, as Ironic does (no fast track).
	if c := count(t, db, `SELECT count(*) FROM nodes WHERE id = $1 AND power_state = 'power off'`, n.ID); c != 1 {
		t.Error("the machine was left on after its inspection")
	}

	var props map[string]any
	var raw []byte
	if err := db.Get(&raw, `SELECT properties FROM nodes WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(raw, &props)
	if props["cpus"] != 16.0 || props["memory_mb"] != 196608.0 || props["cpu_arch"] != "x86_64" || props["local_gb"] != 445.0 {
		t.Errorf("properties after inspection: %v", props)
	}
	got, err := cond.NodeInventory(context.Background(), n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	ifaces, _ := got["inventory"].(map[string]any)["interfaces"].([]any)
	if len(ifaces) != 1 || ifaces[0].(map[string]any)["mac_address"] != "52:54:00:00:00:01" {
		t.Errorf("stored inventory: %v", got)
	}
	if _, err := cond.NodeInventory(context.Background(), "no-such-node"); err == nil {
		t.Error("inventory of a missing node")
	}
}

// TestFailedCommandFailsNode: an agent's failure report moves the node to
// the failed state of its wait, with the agent's reason as last_error.
func TestFailedCommandFailsNode(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	for state, failed := range map[string]string{
		conductor.StateWaitCallback: conductor.StateDeployFailed,
		conductor.StateCleanWait:    conductor.StateCleanFailed,
		conductor.StateInspectWait:  conductor.StateInspectFailed,
	} {
		mac := map[string]string{conductor.StateWaitCallback: "52:54:00:00:00:01", conductor.StateCleanWait: "52:54:00:00:00:02", conductor.StateInspectWait: "52:54:00:00:00:03"}[state]
		n := seedNode(t, db, nodeSeed{state: state, macs: []string{mac}})
		tok := s.mustLookup(t, inv{macs: []string{mac}})
		action := mustCheckin(t, s, tok, nil).Action
		mustCheckin(t, s, tok, &command{action, "failed", "disk /dev/sda: I/O error"})
		if got := stateOf(t, db, n); got != failed {
			t.Errorf("%s after a failed %s: %s, want %s", state, action, got, failed)
		}
		var lastError string
		_ = db.Get(&lastError, `SELECT last_error FROM nodes WHERE id = $1`, n.ID)
		if lastError != "Agent reported that "+action+" failed: disk /dev/sda: I/O error" {
			t.Errorf("last_error %q", lastError)
		}
		if c := count(t, db, `SELECT count(*) FROM tasks WHERE node_id = $1`, n.ID); c != 0 {
			t.Errorf("%d tasks queued for a failed node", c)
		}
	}
	// Inspection reported done without an inventory from this boot: failed too.
	n := seedNode(t, db, nodeSeed{state: conductor.StateInspectWait})
	tok := mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, time.Hour)
	mustCheckin(t, s, tok, &command{"inspect", "success", ""})
	if got := stateOf(t, db, n); got != conductor.StateInspectFailed {
		t.Errorf("inspection done without inventory: %s", got)
	}
}

// TestCheckinActions: what a checkin tells the agent in each situation.
func TestCheckinActions(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	strict, fast := newStack(t, db, stackOptions{}), newStack(t, db, stackOptions{fastTrack: true})
	for _, tc := range []struct {
		state       string
		maintenance bool
		s           *stack
		last        *command
		want        string
	}{
		{conductor.StateWaitCallback, false, strict, nil, agents.ActionDeploy},
		{conductor.StateWaitCallback, false, strict, &command{"clean", "success", ""}, agents.ActionDeploy},
		{conductor.StateWaitCallback, true, strict, nil, agents.ActionWait},
		{conductor.StateCleanWait, false, strict, &command{"clean", "running", ""}, agents.ActionWait},
		{conductor.StateDeploying, false, strict, nil, agents.ActionWait},
		{conductor.StateEnroll, false, strict, nil, agents.ActionPowerOff},
		{conductor.StateManageable, false, fast, nil, agents.ActionWait},
		{conductor.StateActive, false, strict, nil, agents.ActionWait},
		{conductor.StateDeployFailed, false, strict, nil, agents.ActionWait},
	} {
		n := seedNode(t, db, nodeSeed{state: tc.state})
		if tc.maintenance {
			_, _ = db.Exec(`UPDATE nodes SET maintenance = true WHERE id = $1`, n.ID)
		}
		tok := mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, time.Hour)
		if got := mustCheckin(t, tc.s, tok, tc.last).Action; got != tc.want {
			t.Errorf("%s (maintenance %v, last %v): %s, want %s", tc.state, tc.maintenance, tc.last, got, tc.want)
		}
		if st := stateOf(t, db, n); st != tc.state {
			t.Errorf("%s moved to %s", tc.state, st)
		}
	}
	// Past half its life, a token is renewed (same boot); before, not.
	n := seedNode(t, db, nodeSeed{state: conductor.StateActive})
	if in := mustCheckin(t, strict, mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, time.Hour), nil); in.Token != "" {
		t.Error("a fresh token was renewed")
	}
	in := mustCheckin(t, strict, mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, 10*time.Minute), nil)
	if in.Token == "" {
		t.Fatal("a token past half its life was not renewed")
	}
	if in := mustCheckin(t, strict, in.Token, nil); in.Action != agents.ActionWait {
		t.Errorf("renewed token: %+v", in)
	}
	// Bad reports are 400, not recorded.
	for _, body := range []string{
		`{"status": "idle"}`,
		`{"agent_version": "1", "status": "sleeping"}`,
		`{"agent_version": "1", "status": "idle", "last_command": {"name": "rm -rf", "status": "success"}}`,
		`{"agent_version": "1", "status": "idle", "last_command": {"name": "deploy", "status": "done"}}`,
		`{"agent_version": "1", "status": "idle", "extra": 1}`,
		`{"agent_version": 1, "status": "idle"}`,
		`{"agent_version": "1", "status": "idle"`,
		`[[[[[[[[[[]]]]]]]]]]`,
	} {
		before := count(t, db, `SELECT count(*) FROM agent_checkins`)
		r := do(t, defaultClient, "POST", strict.url+"/v1/checkin", []byte(body),
			"Authorization", "Bearer "+mintAgentToken(t, agentKeys, n.UUID, 1, token.AudienceAgent, time.Hour))
		if r.Status != 400 {
			t.Errorf("checkin %s: %d %s, want 400", body, r.Status, r.Body)
		}
		if after := count(t, db, `SELECT count(*) FROM agent_checkins`); after != before {
			t.Errorf("checkin %s was recorded", body)
		}
	}
}

// TestRevocation: a power off, an operator's provisioning action and a new
// boot of the agent each revoke the tokens handed out before; the next
// lookup reveals a new one.
func TestRevocation(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	machine := inv{macs: []string{"52:54:00:00:00:01"}}
	n := seedNode(t, db, nodeSeed{state: conductor.StateAvailable, driverInfo: map[string]any{"fake_agent": true}, macs: machine.macs})
	provision(t, cond, n, "active")
	waitState(t, db, n, conductor.StateWaitCallback)
	// The operator's deploy and the agent's boot each bumped the generation.
	if g := count(t, db, `SELECT agent_token_generation FROM nodes WHERE id = $1`, n.ID); g != 3 {
		t.Errorf("generation %d after deploy and agent boot, want 3", g)
	}
	tok := s.mustLookup(t, machine)
	mustCheckin(t, s, tok, nil)

	// Power off through the conductor: the token dies.
	if _, err := cond.ChangePowerState(context.Background(), n.UUID, conductor.PowerRequest{Target: "power off"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "power off", func() bool {
		return count(t, db, `SELECT count(*) FROM nodes WHERE id = $1 AND power_state = 'power off' AND target_power_state IS NULL`, n.ID) == 1
	})
	if r := s.checkin(t, tok, &command{"deploy", "success", ""}); r.Status != 401 {
		t.Fatalf("checkin after power off: %d %s, want 401", r.Status, r.Body)
	}
	if st := stateOf(t, db, n); st != conductor.StateWaitCallback {
		t.Errorf("a revoked token's success report moved the node to %s", st)
	}
	tok2 := s.mustLookup(t, machine) // a new boot may look up again

	// An operator's abort (of a clean; Ironic refuses abort in wait
	// call-back below 1.110): the token dies as well.
	setState(t, db, n, conductor.StateCleanWait)
	provision(t, cond, n, "abort")
	if r := s.checkin(t, tok2, nil); r.Status != 401 {
		t.Errorf("checkin after the operator's abort: %d, want 401", r.Status)
	}
	// Powering on does not revoke: an agent already running keeps its token.
	setState(t, db, n, conductor.StateInspectWait)
	tok3 := s.mustLookup(t, machine)
	if _, err := cond.ChangePowerState(context.Background(), n.UUID, conductor.PowerRequest{Target: "power on"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "power on", func() bool {
		return count(t, db, `SELECT count(*) FROM nodes WHERE id = $1 AND power_state = 'power on' AND target_power_state IS NULL`, n.ID) == 1
	})
	if r := s.checkin(t, tok3, nil); r.Status != 200 {
		t.Errorf("checkin after power on: %d, want 200", r.Status)
	}
}

// TestManualCleanStepsReachTheAgent: the steps an operator gives a manual
// clean are the agent's orders; an automated clean (provide) carries the
// conductor's default (erase_devices_metadata).
func TestManualCleanStepsReachTheAgent(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	cond := runConductor(t, db)
	s := newStack(t, db, stackOptions{})
	machine := inv{macs: []string{"52:54:00:00:00:07"}}
	n := seedNode(t, db, nodeSeed{state: conductor.StateManageable, driverInfo: map[string]any{"fake_agent": true}, macs: machine.macs})
	steps := []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "priority": 90.0}}
	if _, err := cond.ChangeProvisionState(context.Background(), n.UUID, conductor.ProvisionRequest{Target: "clean", CleanSteps: steps}); err != nil {
		t.Fatal(err)
	}
	waitState(t, db, n, conductor.StateCleanWait)
	tok := s.mustLookup(t, machine)
	in := mustCheckin(t, s, tok, nil)
	got, _ := in.Args["clean_steps"].([]any)
	if in.Action != agents.ActionClean || len(got) != 1 || got[0].(map[string]any)["step"] != "erase_devices_metadata" {
		t.Fatalf("manual clean: action %s args %v, want the operator's steps", in.Action, in.Args)
	}
	mustCheckin(t, s, tok, &command{"clean", "success", ""})
	waitState(t, db, n, conductor.StateManageable)

	provision(t, cond, n, "provide")
	waitState(t, db, n, conductor.StateCleanWait)
	tok = s.mustLookup(t, machine)
	in = mustCheckin(t, s, tok, nil)
	got, _ = in.Args["clean_steps"].([]any)
	if in.Action != agents.ActionClean || len(got) != 1 || got[0].(map[string]any)["step"] != "erase_devices_metadata" ||
		got[0].(map[string]any)["interface"] != "deploy" {
		t.Errorf("automated clean: action %s args %v, want the default erase_devices_metadata", in.Action, in.Args)
	}
}

// TestCheckinIsOneStatement: a checkin reads the node and records itself in
// one statement (one indexed read, one write); anything more is a conductor
// task. PostgreSQL counts what the agent API runs.
func TestCheckinIsOneStatement(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	if _, err := db.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		t.Skipf("pg_stat_statements is not available on this server: %v", err)
	}
	var name string
	if err := db.Get(&name, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`ALTER DATABASE %q SET pg_stat_statements.track = 'top'`, name)); err != nil {
		t.Fatal(err)
	}
	agentDB := sqlx.MustOpen("postgres", url) // sessions that start after the setting
	defer agentDB.Close()
	s := newStack(t, agentDB, stackOptions{})
	seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, macs: []string{"52:54:00:00:0b:01"},
		instanceInfo: map[string]any{"image_source": "http://images.example/os.qcow2"}})
	tok := s.mustLookup(t, inv{macs: []string{"52:54:00:00:0b:01"}})
	mustCheckin(t, s, tok, nil) // the statement is prepared on first use

	counted := func() (calls int, queries []string) {
		t.Helper()
		rows, err := db.Query(`SELECT calls, query FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND query NOT LIKE '%pg_stat_statements%'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n int
			var q string
			if err := rows.Scan(&n, &q); err != nil {
				t.Fatal(err)
			}
			calls += n
			queries = append(queries, q)
		}
		return calls, queries
	}
	// The same report again is the one statement; the first report of the
	// deploy running may add one that writes it into the history, once.
	for _, step := range []struct {
		last  *command
		calls int
	}{{nil, 1}, {&command{"deploy", "running", ""}, 2}, {&command{"deploy", "running", ""}, 1}} {
		if _, err := db.Exec(`SELECT pg_stat_statements_reset()`); err != nil {
			t.Fatal(err)
		}
		mustCheckin(t, s, tok, step.last)
		calls, queries := counted()
		if calls != step.calls || !strings.Contains(strings.Join(queries, "\n"), "INSERT INTO agent_checkins") {
			t.Errorf("a checkin (last command %v) ran %d statements, want %d, the first reading the node and recording the checkin: %q",
				step.last, calls, step.calls, queries)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM node_history WHERE event LIKE 'Agent reported deploy running%'`); n != 1 {
		t.Errorf("%d history entries for the running deploy, want 1", n)
	}
}
