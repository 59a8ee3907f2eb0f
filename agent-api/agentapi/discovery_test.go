package agentapi_test

import (
	"encoding/json"
	"net/netip"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

func TestDiscoveryIsOffByDefault(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	before := rowCounts(t, db)
	if r := s.lookup(t, inv{macs: []string{"52:54:00:aa:00:01"}, bmc: "10.30.0.1"}); r.Status != 404 {
		t.Errorf("unknown machine without discovery: %d, want 404", r.Status)
	}
	if r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", inv{macs: []string{"52:54:00:aa:00:01"}}.ipaData()); r.Status != 404 {
		t.Errorf("unknown machine's inspection data without discovery: %d, want 404", r.Status)
	}
	after := rowCounts(t, db)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("%s: %d rows before, %d after", table, n, after[table])
		}
	}
}

// TestDiscoveryEnrollsOnce: 20 lookups of one new machine at the same
// instant enroll exactly one node, with a port per MAC (the invalid one
// makes none), properties and driver from the inventory, and hand out
// exactly one token.
func TestDiscoveryEnrollsOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{discovery: true})
	doc := inv{macs: []string{"52:54:00:AA:00:01", "zz", "52-54-00-aa-00-02"}, bmc: "10.30.0.5", serial: "SN-NEW-1"}.json()

	var mu sync.Mutex
	statuses, tokens := map[int]int{}, 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := do(t, defaultClient, "POST", s.url+"/v1/lookup", doc)
			var body struct{ Token string }
			_ = json.Unmarshal(r.Body, &body)
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			if len(body.Token) > 32 {
				tokens++
			}
		}()
	}
	close(start)
	wg.Wait()
	if statuses[200] != 1 || statuses[404] != 19 || tokens != 1 {
		t.Errorf("20 simultaneous lookups: statuses %v, %d tokens; want one 200 with the token, 19 404 (enroll expects no agent)", statuses, tokens)
	}
	if n := count(t, db, `SELECT count(*) FROM nodes`); n != 1 {
		t.Fatalf("%d nodes enrolled, want 1", n)
	}
	var node struct {
		UUID       string `db:"uuid"`
		State      string `db:"provision_state"`
		Driver     string `db:"driver"`
		DriverInfo []byte `db:"driver_info"`
		Props      []byte `db:"properties"`
	}
	if err := db.Get(&node, `SELECT uuid, provision_state, driver, driver_info, properties FROM nodes`); err != nil {
		t.Fatal(err)
	}
	if node.State != conductor.StateEnroll || node.Driver != "ipmi" || string(node.DriverInfo) != `{"ipmi_address": "10.30.0.5"}` {
		t.Errorf("discovered node: %s %s %s", node.State, node.Driver, node.DriverInfo)
	}
	var props map[string]any
	_ = json.Unmarshal(node.Props, &props)
	if props["cpus"] != 16.0 || props["memory_mb"] != 196608.0 || props["local_gb"] != 445.0 || props["cpu_arch"] != "x86_64" {
		t.Errorf("discovered properties: %v", props)
	}
	var macs []string
	if err := db.Select(&macs, `SELECT address FROM ports ORDER BY address`); err != nil {
		t.Fatal(err)
	}
	if len(macs) != 2 || macs[0] != "52:54:00:aa:00:01" || macs[1] != "52:54:00:aa:00:02" {
		t.Errorf("ports %v, want the two valid MACs once each", macs)
	}
	if c := count(t, db, `SELECT count(*) FROM node_inventories WHERE system_serial = 'SN-NEW-1'`); c != 1 {
		t.Error("inventory not stored with the node")
	}
	if c := count(t, db, `SELECT count(*) FROM discoveries WHERE node_uuid = $1 AND source_address = '127.0.0.1'`, node.UUID); c != 1 {
		t.Error("discovery not recorded for the quota")
	}
	n := testNode{UUID: node.UUID}
	_ = db.Get(&n.ID, `SELECT id FROM nodes`)
	if !hasEvent(history(t, db, n), "Enrolled by discovery") {
		t.Errorf("history %q", history(t, db, n))
	}
}

// TestDiscoveryBMCOutsideNetworks: a BMC address outside the configured
// discovery BMC networks (none by default) never reaches driver_info, since
// the conductor would connect to it: the bmc_address rule does not hold, the
// next rule applies, and the address stays in the inventory only.
func TestDiscoveryBMCOutsideNetworks(t *testing.T) {
	t.Parallel()
	for name, networks := range map[string][]netip.Prefix{
		"no networks":   {},
		"other network": {netip.MustParsePrefix("10.99.0.0/16")},
	} {
		db := pgtest.NewDB(t)
		s := newStack(t, db, stackOptions{discovery: true, bmcNetworks: networks})
		r := s.lookup(t, inv{macs: []string{"52:54:00:cc:00:01"}, bmc: "10.30.0.5"})
		if r.Status != 200 {
			t.Fatalf("%s: discovery: %d %s", name, r.Status, r.Body)
		}
		var n testNode
		var driver, info, reported string
		if err := db.QueryRow(`SELECT n.id, n.uuid, n.driver, n.driver_info::text, i.inventory->>'bmc_address'
			FROM nodes n JOIN node_inventories i ON i.node_id = n.id`).Scan(&n.ID, &n.UUID, &driver, &info, &reported); err != nil {
			t.Fatal(err)
		}
		if driver != "fake" || info != "{}" {
			t.Errorf("%s: discovered node %s %s; want the fake driver with no BMC address", name, driver, info)
		}
		if reported != "10.30.0.5" {
			t.Errorf("%s: inventory's bmc_address %q, want the reported 10.30.0.5", name, reported)
		}
		if !hasEvent(history(t, db, n), "outside the discovery BMC networks") {
			t.Errorf("%s: history %q does not say why driver_info has no BMC", name, history(t, db, n))
		}
	}
}

// TestDiscoveryRules: a BMC IPA reports as unknown ("0.0.0.0", "::/0") is
// no BMC; configured rules pick the driver and fill driver_info.
func TestDiscoveryRules(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{discovery: true, quota: 10,
		rules: "bmc_address -> redfish redfish_address=https://{bmc_host} redfish_system_id=/redfish/v1/Systems/1; * -> fake"})
	for _, tc := range []struct {
		machine    inv
		driver     string
		driverInfo string
	}{
		{inv{macs: []string{"52:54:00:bb:00:01"}}, "fake", `{}`},
		{inv{macs: []string{"52:54:00:bb:00:02"}, bmcV6: "fd00::7"}, "redfish", `{"redfish_address": "https://[fd00::7]", "redfish_system_id": "/redfish/v1/Systems/1"}`},
		{inv{macs: []string{"52:54:00:bb:00:03"}, bmc: "10.30.0.9"}, "redfish", `{"redfish_address": "https://10.30.0.9", "redfish_system_id": "/redfish/v1/Systems/1"}`},
	} {
		r := s.lookup(t, tc.machine)
		if r.Status != 200 {
			t.Fatalf("discovery of %v: %d %s", tc.machine.macs, r.Status, r.Body)
		}
		var driver, info string
		if err := db.QueryRow(`SELECT driver, driver_info::text FROM nodes WHERE uuid = $1`, r.json(t)["node_uuid"]).Scan(&driver, &info); err != nil {
			t.Fatal(err)
		}
		if driver != tc.driver || info != tc.driverInfo {
			t.Errorf("%v: driver %s %s, want %s %s", tc.machine.macs, driver, info, tc.driver, tc.driverInfo)
		}
	}
	// The discovered node is found again (enroll takes its inventory
	// while discovery is on), not enrolled twice.
	r := do(t, defaultClient, "POST", s.url+"/v1/continue_inspection", inv{macs: []string{"52:54:00:bb:00:01"}, cpus: 64}.ipaData())
	if r.Status != 202 {
		t.Fatalf("rediscovery: %d %s", r.Status, r.Body)
	}
	if n := count(t, db, `SELECT count(*) FROM nodes`); n != 3 {
		t.Errorf("%d nodes after rediscovery, want 3", n)
	}
	if c := count(t, db, `SELECT (properties->>'cpus')::int FROM nodes WHERE uuid = $1`, r.json(t)["uuid"]); c != 64 {
		t.Errorf("rediscovery did not update the properties: cpus %d", c)
	}
}

// TestDiscoveryQuota: one source address cannot enroll more than its quota;
// another source still can.
func TestDiscoveryQuota(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{discovery: true, quota: 2})
	for i, mac := range []string{"52:54:00:cc:00:01", "52:54:00:cc:00:02"} {
		if r := s.lookup(t, inv{macs: []string{mac}}); r.Status != 200 {
			t.Fatalf("discovery %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	before := rowCounts(t, db)
	if r := s.lookup(t, inv{macs: []string{"52:54:00:cc:00:03"}}); r.Status != 404 {
		t.Errorf("third discovery from one source: %d, want 404", r.Status)
	}
	if after := rowCounts(t, db); after["nodes"] != before["nodes"] || after["ports"] != before["ports"] {
		t.Errorf("over quota, rows were written: %v -> %v", before, after)
	}
	other := agentClient("127.0.0.2")
	r := do(t, other, "POST", s.url+"/v1/lookup", inv{macs: []string{"52:54:00:cc:00:03"}}.json())
	if r.Status != 200 {
		t.Errorf("discovery from another source: %d %s", r.Status, r.Body)
	}
}
