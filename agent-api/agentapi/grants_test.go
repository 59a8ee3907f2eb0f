package agentapi_test

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// agentRoleDB applies deployments/database-roles.sql to a fresh database
// and returns two connections to it: the owner's, and the agent API's
// restricted role's.
func agentRoleDB(t *testing.T) (owner, agent *sqlx.DB) {
	t.Helper()
	dbURL := pgtest.URL(t)
	owner, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	script, err := os.ReadFile("../../deployments/database-roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(string(script)); err != nil {
		t.Fatalf("database-roles.sql: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("ferric_agent_api")
	agent, err = sqlx.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	return owner, agent
}

// TestAgentRoleSuffices runs every agent operation with the database role
// of deployments/database-roles.sql, and checks that the role can read no
// BMC credential nor change what the agent API has no business changing.
func TestAgentRoleSuffices(t *testing.T) {
	t.Parallel()
	owner, agentDB := agentRoleDB(t)
	cond := runConductor(t, owner)
	s := newStack(t, agentDB, stackOptions{discovery: true, quota: 5})

	// Deploy through IPA's protocol: lookup, a heartbeat (recorded, with the
	// note that IPA is not driven), then a ramdisk's report of the end: the
	// node resumes.
	deploy := seedNode(t, owner, nodeSeed{state: conductor.StateAvailable, macs: []string{"52:54:00:00:00:01"},
		driverInfo: map[string]any{"fake_agent": true, "ipmi_password": "s3cret"}})
	provision(t, cond, deploy, "active")
	waitState(t, owner, deploy, conductor.StateWaitCallback)
	tok := s.ipaLookup(t, "addresses=52:54:00:00:00:01")
	if r := s.heartbeat(t, deploy.UUID, tok, "http://10.20.0.10:9999"); r.Status != 202 {
		t.Fatalf("heartbeat as the agent role: %d %s", r.Status, r.Body)
	}
	if !hasEvent(history(t, owner, deploy), "does not drive IPA") {
		t.Errorf("the agent role could not note the IPA heartbeat: %q", history(t, owner, deploy))
	}
	if r := s.reportingHeartbeat(t, deploy.UUID, tok, "end"); r.Status != 202 {
		t.Fatalf("agent_status end as the agent role: %d %s", r.Status, r.Body)
	}
	waitState(t, owner, deploy, conductor.StateActive)

	// Inspection through native checkins: inventory, properties, resume.
	inspect := seedNode(t, owner, nodeSeed{state: conductor.StateInspectWait, macs: []string{"52:54:00:00:00:02"}})
	tok = s.mustLookup(t, inv{macs: []string{"52:54:00:00:00:02"}})
	if in := mustCheckin(t, s, tok, &command{"inspect", "success", ""}); in.Action != agents.ActionWait {
		t.Errorf("inspect success: %+v", in)
	}
	waitState(t, owner, inspect, conductor.StateManageable)

	// A failure report fails the node.
	failing := seedNode(t, owner, nodeSeed{state: conductor.StateCleanWait})
	mustCheckin(t, s, mintAgentToken(t, agentKeys, failing.UUID, 1, token.AudienceAgent, time.Hour), &command{"clean", "failed", "boom"})
	if st := stateOf(t, owner, failing); st != conductor.StateCleanFailed {
		t.Errorf("failed clean as the agent role: %s", st)
	}

	// Refusals with history, IPA inspection data, and discovery under concurrency.
	seedNode(t, owner, nodeSeed{state: conductor.StateActive, macs: []string{"52:54:00:00:00:03"}})
	if r := s.lookup(t, inv{macs: []string{"52:54:00:00:00:03"}}); r.Status != 404 {
		t.Errorf("active node: %d", r.Status)
	}
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", inv{macs: []string{"52:54:00:00:00:04"}, bmc: "10.30.0.1"}.ipaData()); r.Status != 202 {
		t.Errorf("discovery through continue_inspection: %d %s", r.Status, r.Body)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.lookup(t, inv{macs: []string{"52:54:00:00:00:05"}})
		}()
	}
	wg.Wait()
	if n := count(t, owner, `SELECT count(*) FROM ports WHERE address IN ('52:54:00:00:00:04', '52:54:00:00:00:05')`); n != 2 {
		t.Errorf("%d ports for two discovered machines, want 2", n)
	}

	// What the role must not do.
	for _, stmt := range []string{
		`SELECT driver_info FROM nodes`,
		`SELECT driver_internal_info FROM nodes`,
		`SELECT * FROM nodes`,
		`UPDATE nodes SET driver_info = '{}'`,
		`UPDATE nodes SET agent_token_generation = 1`,
		`UPDATE nodes SET reservation = 'me'`,
		`DELETE FROM nodes`,
		`DELETE FROM ports`,
		`UPDATE tasks SET state = 'done'`,
		`DELETE FROM node_history`,
		`SELECT * FROM conductors`,
		`SELECT * FROM chassis`,
		`CREATE TABLE evil (id int)`,
	} {
		_, err := agentDB.Exec(stmt)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the agent role: %v, want permission denied", stmt, err)
		}
	}

	// What the column grants allow, but not on rows no agent is waiting on.
	idle := seedNode(t, owner, nodeSeed{state: conductor.StateAvailable})
	waiting := seedNode(t, owner, nodeSeed{state: conductor.StateWaitCallback})
	for _, stmt := range []string{
		`UPDATE nodes SET provision_state = 'cleaning' WHERE id = ` + fmt.Sprint(idle.ID),
		`UPDATE nodes SET provision_state = 'deploy failed' WHERE provision_state = 'active'
			OR id = ` + fmt.Sprint(idle.ID),
		`INSERT INTO nodes (uuid, driver, provision_state) VALUES (gen_random_uuid(), 'fake', 'available')`,
		`INSERT INTO tasks (kind, pool, node_id, driver, args) VALUES ('power', 'agent', ` + fmt.Sprint(idle.ID) + `, 'fake', '{"action": "power off"}')`,
		`INSERT INTO tasks (kind, pool, node_id, driver, args) VALUES ('provision', 'operator', ` + fmt.Sprint(idle.ID) + `, 'fake', '{"state": "cleaning", "phase": "resume"}')`,
		`INSERT INTO tasks (kind, pool, node_id, driver, args) VALUES ('provision', 'agent', ` + fmt.Sprint(idle.ID) + `, 'fake', '{"state": "deleting", "phase": "resume"}')`,
		`INSERT INTO tasks (kind, pool, node_id, driver, args) VALUES ('provision', 'agent', ` + fmt.Sprint(idle.ID) + `, 'fake', '{"state": "cleaning", "phase": "start"}')`,
		`INSERT INTO tasks (kind, pool, node_id, driver, args) VALUES ('provision', 'agent', ` + fmt.Sprint(idle.ID) + `, 'fake', '{"state": "cleaning"}')`,
		// A waiting node, moved where no report leads, or an idle one's target or properties.
		`UPDATE nodes SET provision_state = 'cleaning', target_provision_state = 'available' WHERE id = ` + fmt.Sprint(waiting.ID),
		`UPDATE nodes SET provision_state = 'active' WHERE id = ` + fmt.Sprint(waiting.ID),
		`UPDATE nodes SET target_provision_state = 'deleted' WHERE id = ` + fmt.Sprint(idle.ID),
		`UPDATE nodes SET last_error = 'x' WHERE id = ` + fmt.Sprint(idle.ID),
		`UPDATE nodes SET properties = '{"cpus": 1}' WHERE id = ` + fmt.Sprint(idle.ID),
	} {
		_, err := agentDB.Exec(stmt)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the agent role: %v, want permission denied", stmt, err)
		}
	}
	if got := stateOf(t, owner, idle); got != conductor.StateAvailable {
		t.Errorf("the idle node moved to %s", got)
	}
	// The same writes on a node that waits for its agent are allowed.
	if _, err := agentDB.Exec(`UPDATE nodes SET provision_state = 'deploy failed' WHERE id = $1`, waiting.ID); err != nil {
		t.Errorf("failing a waiting node as the agent role: %v", err)
	}
}
