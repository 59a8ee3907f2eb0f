package agentapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

const testIssuer = "ferric-test"

// agentKeys sign agent tokens; otherKeys are a different secret under the
// same kid, as a forger would have.
var (
	agentKeys = mustKeys("ag1 " + strings.Repeat("QUJD", 11))
	otherKeys = mustKeys("ag1 " + strings.Repeat("WFla", 11))
)

func mustKeys(line string) *token.Keys {
	k, err := token.ParseKeys(line)
	if err != nil {
		panic(err)
	}
	return k
}

// stackOptions shape an agent API under test.
type stackOptions struct {
	fastTrack bool
	discovery bool
	quota     int
	rules     string
	// bmcNetworks are the discovery BMC networks; nil: 10.0.0.0/8 and
	// fd00::/8, where the tests' BMCs are.
	bmcNetworks []netip.Prefix
	api         agentapi.Options
	tokenTTL    time.Duration
	// queueLimit bounds the agent pool's queue (checkins get 503 beyond).
	queueLimit int
}

// stack is an agent API served on a real listener over a test database,
// as the ferric-agent-api program wires it: a conductor without drivers.
type stack struct {
	db      *sqlx.DB
	agents  *agents.Agents
	url     string
	handler http.Handler
}

func newStack(t testing.TB, db *sqlx.DB, o stackOptions) *stack {
	t.Helper()
	c := conductor.New(db, drivers.NewRegistry(), discard, conductor.Options{FastTrack: o.fastTrack, Name: "agent-api",
		QueueLimits: map[string]int{conductor.PoolAgent: o.queueLimit}})
	if o.bmcNetworks == nil {
		o.bmcNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	}
	disc := agents.DiscoveryOptions{Enabled: o.discovery, QuotaPerSource: o.quota, BMCNetworks: o.bmcNetworks}
	if o.rules != "" {
		rules, err := agents.ParseDiscoveryRules(o.rules)
		if err != nil {
			t.Fatal(err)
		}
		disc.Rules = rules
	}
	side, err := agents.New(c, agents.Options{Keys: agentKeys, Issuer: testIssuer,
		TokenTTL: o.tokenTTL, CheckinInterval: 30 * time.Second, Discovery: disc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { side.Close() })
	api, err := agentapi.New(side, discard, o.api)
	if err != nil {
		t.Fatal(err)
	}
	h := api.Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &stack{db: db, agents: side, url: srv.URL, handler: h}
}

// runConductor runs a conductor with the fake driver against db until the
// test ends: the workers that carry provisioning on after an agent's
// checkin, and the registration that lets operators start work.
func runConductor(t *testing.T, db *sqlx.DB) *conductor.Conductor {
	t.Helper()
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	c := conductor.New(db, reg, discard, conductor.Options{Name: "test-conductor", LockTTL: 5 * time.Second, TaskLease: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // ends when the test ends
		defer wg.Done()
		_ = c.RunWorkers(ctx, conductor.WorkerConfig{Pools: map[string]int{conductor.PoolOperator: 4, conductor.PoolAgent: 4},
			PollInterval: 20 * time.Millisecond, Grace: 5 * time.Second})
	}()
	go func() { // ends when the test ends
		defer wg.Done()
		_ = c.RunPeriodic(ctx, conductor.PeriodicConfig{CheckInterval: time.Second})
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "the conductor to register", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM conductors WHERE name = 'test-conductor'`)
		return n == 1
	})
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testNode is a node seeded straight into the database.
type testNode struct {
	ID   int64
	UUID string
}

type nodeSeed struct {
	state        string
	driver       string
	driverInfo   map[string]any
	instanceInfo map[string]any
	macs         []string
	serial       string // stored as the serial of a previous inventory
}

func seedNode(t testing.TB, db *sqlx.DB, s nodeSeed) testNode {
	t.Helper()
	if s.driver == "" {
		s.driver = "fake"
	}
	var n testNode
	err := db.Get(&n, `INSERT INTO nodes (uuid, driver, driver_info, instance_info, provision_state, power_state)
		VALUES (gen_random_uuid(), $1, $2, $3, $4, 'power on') RETURNING id, uuid`,
		s.driver, store.JSONObject(s.driverInfo), store.JSONObject(s.instanceInfo), s.state)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.macs {
		if _, err := db.Exec(`INSERT INTO ports (uuid, address, node_id) VALUES (gen_random_uuid(), $1, $2)`, m, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	if s.serial != "" {
		if _, err := db.Exec(`INSERT INTO node_inventories (node_id, inventory, system_serial, token_generation, source_address)
			VALUES ($1, '{}', $2, 0, 'test')`, n.ID, s.serial); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func setState(t testing.TB, db *sqlx.DB, n testNode, state string) {
	t.Helper()
	if _, err := db.Exec(`UPDATE nodes SET provision_state = $1 WHERE id = $2`, state, n.ID); err != nil {
		t.Fatal(err)
	}
}

func stateOf(t testing.TB, db *sqlx.DB, n testNode) string {
	t.Helper()
	var s string
	if err := db.Get(&s, `SELECT provision_state FROM nodes WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	return s
}

func count(t testing.TB, db *sqlx.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// rowCounts counts the rows of every table an agent request could write.
func rowCounts(t testing.TB, db *sqlx.DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"nodes", "ports", "node_inventories", "agent_checkins", "node_history", "tasks", "discoveries"} {
		out[table] = count(t, db, "SELECT count(*) FROM "+table)
	}
	return out
}

// inv builds an inventory in IPA's shape.
type inv struct {
	macs    []string
	bmc     string
	bmcV6   string
	serial  string
	cpus    int
	extra   map[string]any // merged at the top level
	dropKey string         // removed at the top level
}

func (i inv) doc() map[string]any {
	ifaces := []any{}
	for n, m := range i.macs {
		ifaces = append(ifaces, map[string]any{"name": fmt.Sprintf("eno%d", n+1), "mac_address": m,
			"ipv4_address": fmt.Sprintf("10.20.0.%d", n+10), "ipv6_address": nil, "has_carrier": true,
			"lldp": nil, "vendor": "0x8086", "product": "0x1572", "client_id": nil, "biosdevname": "em1",
			"speed_mbps": 10000, "pci_address": "0000:18:00.0", "driver": "i40e"})
	}
	cpus := i.cpus
	if cpus == 0 {
		cpus = 16
	}
	bmc, bmc6 := i.bmc, i.bmcV6
	if bmc == "" {
		bmc = "0.0.0.0"
	}
	if bmc6 == "" {
		bmc6 = "::/0"
	}
	pxe := any(nil)
	if len(i.macs) > 0 {
		pxe = "01-" + strings.ReplaceAll(i.macs[0], ":", "-")
	}
	d := map[string]any{
		"interfaces": ifaces,
		"cpu": map[string]any{"model_name": "Intel(R) Xeon(R) Gold 6230", "frequency": "3900.0000", "count": cpus,
			"architecture": "x86_64", "flags": []string{"fpu", "vmx"}, "socket_count": 2},
		"memory": map[string]any{"total": int64(201326592000), "physical_mb": 196608},
		"disks": []any{
			map[string]any{"name": "/dev/sda", "model": "PERC H740P", "size": int64(479559942144), "rotational": false,
				"wwn": "0x6", "serial": "00a1", "vendor": "DELL", "wwn_with_extension": "0x6", "wwn_vendor_extension": "0x2",
				"hctl": "0:2:0:0", "by_path": "/dev/disk/by-path/pci-0000:3b:00.0-scsi-0:2:0:0",
				"logical_sectors": 512, "physical_sectors": 4096, "tran": "sas"},
			map[string]any{"name": "/dev/sdb", "size": int64(2 << 30)},
		},
		"bmc_address": bmc, "bmc_v6address": bmc6,
		"system_vendor": map[string]any{"product_name": "PowerEdge R640", "serial_number": i.serial, "manufacturer": "Dell Inc.",
			"firmware": map[string]any{"vendor": "Dell Inc.", "version": "2.19.1", "build_date": "05/30/2023"}},
		"boot":     map[string]any{"current_boot_mode": "uefi", "pxe_interface": pxe},
		"hostname": "localhost.localdomain",
	}
	for k, v := range i.extra {
		d[k] = v
	}
	delete(d, i.dropKey)
	return d
}

func (i inv) json() []byte {
	b, err := json.Marshal(i.doc())
	if err != nil {
		panic(err)
	}
	return b
}

// ipaData wraps an inventory as IPA's inspection data.
func (i inv) ipaData() []byte {
	b, _ := json.Marshal(map[string]any{"inventory": i.doc(), "root_disk": map[string]any{"name": "/dev/sda", "size": int64(479559942144)},
		"boot_interface": "01-aa", "configuration": map[string]any{"collectors": []string{"default"}}, "error": nil,
		"logs": "H4sIAAAA"})
	return b
}

// agentClient is an agent's HTTP client, optionally from its own loopback
// address (127.0.0.x), so that tests can tell sources apart.
func agentClient(from string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

var defaultClient = agentClient("")

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("status %d, body %q: %v", r.Status, r.Body, err)
	}
	return m
}

func do(t testing.TB, client *http.Client, method, url string, body []byte, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (s *stack) lookup(t testing.TB, i inv) response {
	t.Helper()
	return do(t, defaultClient, "POST", s.url+"/v1/lookup", i.json(), "Content-Type", "application/json")
}

// mustLookup looks up and returns the revealed token.
func (s *stack) mustLookup(t testing.TB, i inv) string {
	t.Helper()
	r := s.lookup(t, i)
	if r.Status != 200 {
		t.Fatalf("lookup: %d %s", r.Status, r.Body)
	}
	tok, _ := r.json(t)["token"].(string)
	if tok == "" || tok == "******" {
		t.Fatalf("lookup revealed no token: %s", r.Body)
	}
	return tok
}

type command struct{ name, status, err string }

func (s *stack) checkin(t testing.TB, tok string, last *command) response {
	t.Helper()
	body := map[string]any{"agent_version": "ferric-agent 1.0", "status": "idle"}
	if last != nil {
		body["last_command"] = map[string]any{"name": last.name, "status": last.status, "error": last.err}
	}
	b, _ := json.Marshal(body)
	return do(t, defaultClient, "POST", s.url+"/v1/checkin", b, "Authorization", "Bearer "+tok, "Content-Type", "application/json")
}

func (s *stack) heartbeat(t testing.TB, node, tok, callback string) response {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"callback_url": callback, "agent_token": tok, "agent_version": "10.1.0"})
	return do(t, defaultClient, "POST", s.url+"/v1/heartbeat/"+node, b,
		"Content-Type", "application/json", "X-OpenStack-Ironic-API-Version", "1.68")
}

// reportingHeartbeat is a heartbeat with agent_status (Ironic API 1.72), as
// a ramdisk that does the work itself and reports its progress sends it.
func (s *stack) reportingHeartbeat(t testing.TB, node, tok, status string) response {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"callback_url": "", "agent_token": tok, "agent_version": "anaconda", "agent_status": status})
	return do(t, defaultClient, "POST", s.url+"/v1/heartbeat/"+node, b,
		"Content-Type", "application/json", "X-OpenStack-Ironic-API-Version", "1.72")
}

// history returns the node's history events.
func history(t testing.TB, db *sqlx.DB, n testNode) []string {
	t.Helper()
	var events []string
	if err := db.Select(&events, `SELECT event FROM node_history WHERE node_id = $1 ORDER BY id`, n.ID); err != nil {
		t.Fatal(err)
	}
	return events
}

func hasEvent(events []string, part string) bool {
	for _, e := range events {
		if strings.Contains(e, part) {
			return true
		}
	}
	return false
}

// mintAgentToken mints an agent token as the agent API would, with the
// given keys, audience and lifetime.
func mintAgentToken(t testing.TB, keys *token.Keys, nodeUUID string, generation int64, audience string, ttl time.Duration) string {
	t.Helper()
	claims := token.Claims{Generation: generation}
	claims.Subject = nodeUUID
	tok, err := keys.Mint(claims, testIssuer, audience, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
