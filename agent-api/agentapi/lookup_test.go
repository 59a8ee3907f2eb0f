package agentapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// TestOperatorEnrollsAgentFinds is the end-to-end slice across both APIs:
// an operator creates a node and a port through gophercloud on the public
// API; an agent on that machine finds the node through the agent API by
// MAC, and its token is worthless on the public API, as the operator's is
// here.
func TestOperatorEnrollsAgentFinds(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	operatorKeys := mustKeys("op1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	pub := httptest.NewServer(publicapi.New(conductor.New(db, reg, discard, conductor.Options{}),
		publicapi.JWTAuth{Keys: operatorKeys, Issuer: testIssuer}, db, discard).Handler())
	t.Cleanup(pub.Close)
	agent := newStack(t, db, stackOptions{fastTrack: true})

	client, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: pub.URL + "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	claims := token.Claims{Role: "admin"}
	operatorToken, err := operatorKeys.Mint(claims, testIssuer, token.AudiencePublic, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client.ProviderClient.TokenID = operatorToken
	client.Microversion = "1.81"
	ctx := context.Background()
	node, err := nodes.Create(ctx, client, nodes.CreateOpts{Driver: "fake", Name: "e2e-1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	// A deploy would have set this; it holds a credential the agent must not see.
	if _, err := db.Exec(`UPDATE nodes SET instance_info = '{"image_url": "http://user:pw@img/"}' WHERE uuid = $1`, node.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := ports.Create(ctx, client, ports.CreateOpts{NodeUUID: node.UUID, Address: "52:54:00:12:34:56"}).Extract(); err != nil {
		t.Fatal(err)
	}

	// IPA sends every MAC of the machine, in its own spelling, invalid ones included.
	r := do(t, defaultClient, "GET", agent.url+"/v1/lookup?addresses=zz:zz,52:54:00:AA:AA:AA,52:54:00:12:34:56", nil,
		"X-OpenStack-Ironic-API-Version", "1.62")
	if r.Status != 200 {
		t.Fatalf("lookup: %d %s", r.Status, r.Body)
	}
	var got struct {
		Node struct {
			UUID         string         `json:"uuid"`
			InstanceInfo map[string]any `json:"instance_info"`
		} `json:"node"`
		Config struct {
			HeartbeatTimeout int    `json:"heartbeat_timeout"`
			AgentToken       string `json:"agent_token"`
		} `json:"config"`
	}
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Node.UUID != node.UUID {
		t.Errorf("lookup found %q, want %q", got.Node.UUID, node.UUID)
	}
	if got.Config.HeartbeatTimeout <= 0 {
		t.Error("config.heartbeat_timeout missing: IPA requires it")
	}
	if got.Node.InstanceInfo["image_url"] != "******" {
		t.Errorf("image_url not masked for the agent: %v", got.Node.InstanceInfo["image_url"])
	}
	if len(got.Config.AgentToken) < 32 {
		t.Fatalf("agent token %q: IPA ignores tokens shorter than 32 characters", got.Config.AgentToken)
	}

	// The agent's token on the operator API: refused.
	req, _ := http.NewRequest("GET", pub.URL+"/v1/nodes", nil)
	req.Header.Set("X-Auth-Token", got.Config.AgentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("agent token on the public API: %d, want 401", resp.StatusCode)
	}
	// The operator's token on the agent API: refused, and nothing recorded.
	if r := agent.checkin(t, operatorToken, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("operator token at checkin: %d, want 401", r.Status)
	}
	if n := count(t, db, `SELECT count(*) FROM agent_checkins`); n != 0 {
		t.Errorf("%d checkins recorded with an operator token", n)
	}
}

func TestOnlyAgentRoutesExist(t *testing.T) {
	t.Parallel()
	s := newStack(t, pgtest.NewDB(t), stackOptions{})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 404}, // readiness is the operator API's; this listener has the two operations and /healthz
		{"GET", "/v1/nodes", 404},
		{"GET", "/v1", 404},
		{"GET", "/v1/", 404},
		{"GET", "/v1/lookup/", 404},
		{"GET", "/v1/heartbeat", 404},
		{"POST", "/v1/heartbeat/", 404},
		{"POST", "/v1/heartbeat/a/b", 404},
		{"GET", "/v1/nodes/x/inventory", 404},
		{"POST", "/v1/continue", 404},
		{"GET", "/metrics", 404},
		{"PUT", "/v1/lookup", 405},
		{"DELETE", "/v1/lookup", 405},
		{"GET", "/v1/checkin", 405},
		{"GET", "/v1/continue_inspection", 405},
		{"GET", "/v1/heartbeat/x", 405},
		{"DELETE", "/", 405},
		{"POST", "/healthz", 405},
	} {
		r := do(t, defaultClient, tc.method, s.url+tc.path, []byte{})
		if r.Status != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, r.Status, tc.want)
		}
	}
	r := do(t, defaultClient, "GET", s.url+"/", nil, "Content-Type", "application/json")
	var root struct {
		DefaultVersion struct{ Version string } `json:"default_version"`
	}
	if err := json.Unmarshal(r.Body, &root); err != nil || r.Status != 200 {
		t.Fatal(r.Status, string(r.Body))
	}
	var major, minor int
	if _, err := fmt.Sscanf(root.DefaultVersion.Version, "%d.%d", &major, &minor); err != nil || major != 1 || minor < 68 {
		t.Errorf("advertised version %q; IPA needs >= 1.68", root.DefaultVersion.Version)
	}
	for version, want := range map[string]int{"1.62": 200, "1.68": 200, "latest": 200, "1.999": 406, "one": 400, "2.1": 400} {
		r := do(t, defaultClient, "GET", s.url+"/", nil, "X-OpenStack-Ironic-API-Version", version)
		if r.Status != want {
			t.Errorf("version header %q: %d, want %d", version, r.Status, want)
		}
	}
}

// TestLookupMatching covers the matching rules of the native lookup: by
// port MAC, BMC address and serial number; the strongest evidence wins;
// conflicting evidence, a tie, a node in the wrong state and an unknown
// machine all get the same 404, while the node history says which.
func TestLookupMatching(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	wait := conductor.StateWaitCallback
	byMAC := seedNode(t, db, nodeSeed{state: wait, macs: []string{"52:54:00:00:01:01", "52:54:00:00:01:02"}})
	byIPMI := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait, driver: "ipmi", driverInfo: map[string]any{"ipmi_address": "10.10.0.2", "ipmi_password": "s3cret"}})
	byRedfish := seedNode(t, db, nodeSeed{state: conductor.StateInspectWait, driver: "redfish", driverInfo: map[string]any{"redfish_address": "https://[FD00::3]:8443/redfish/v1"}})
	bySerial := seedNode(t, db, nodeSeed{state: wait, serial: "SN-ABC-123"})
	byLongV6 := seedNode(t, db, nodeSeed{state: wait, driver: "ipmi", driverInfo: map[string]any{"ipmi_address": " FD00:0000:0000::30 "}})
	byMappedV4 := seedNode(t, db, nodeSeed{state: wait, driver: "redfish", driverInfo: map[string]any{"redfish_address": "HTTPS://[::FFFF:10.10.0.70]/redfish/v1"}})
	// Three nodes behind one Redfish aggregator; one also has its MAC registered.
	aggregated := seedNode(t, db, nodeSeed{state: wait, driver: "redfish", driverInfo: map[string]any{"redfish_address": "https://10.10.0.9"}, macs: []string{"52:54:00:00:09:01"}})
	seedNode(t, db, nodeSeed{state: wait, driver: "redfish", driverInfo: map[string]any{"redfish_address": "https://10.10.0.9"}})
	seedNode(t, db, nodeSeed{state: wait, driver: "redfish", driverInfo: map[string]any{"redfish_address": "10.10.0.9:443"}})
	conflictMAC := seedNode(t, db, nodeSeed{state: wait, macs: []string{"52:54:00:00:05:01"}})
	conflictBMC := seedNode(t, db, nodeSeed{state: wait, driverInfo: map[string]any{"ipmi_address": "10.10.0.5"}})
	twinA := seedNode(t, db, nodeSeed{state: wait, serial: "SN-TWIN-1"})
	twinB := seedNode(t, db, nodeSeed{state: wait, serial: "SN-TWIN-1"})
	active := seedNode(t, db, nodeSeed{state: conductor.StateActive, macs: []string{"52:54:00:00:06:01"}})
	enrolled := seedNode(t, db, nodeSeed{state: conductor.StateEnroll, macs: []string{"52:54:00:00:07:01"}})

	strict := newStack(t, db, stackOptions{})
	fast := newStack(t, db, stackOptions{fastTrack: true})
	tests := []struct {
		name  string
		s     *stack
		inv   inv
		want  testNode // zero: 404
		story string   // what the node history of the refused nodes says
	}{
		{"MAC, in IPA's spelling", strict, inv{macs: []string{"zz", "52-54-00-00-01-02"}}, byMAC, ""},
		{"BMC address of ipmi_address", strict, inv{macs: []string{"52:54:00:ff:00:01"}, bmc: "10.10.0.2"}, byIPMI, ""},
		{"BMC v6 address of a redfish URL", strict, inv{macs: []string{"52:54:00:ff:00:02"}, bmcV6: "fd00:0::3"}, byRedfish, ""},
		{"serial number", strict, inv{macs: []string{"52:54:00:ff:00:03"}, serial: " SN-ABC-123 "}, bySerial, ""},
		{"IPv6 written long in driver_info", strict, inv{macs: []string{"52:54:00:ff:00:07"}, bmcV6: "fd00::30"}, byLongV6, ""},
		{"IPv4-mapped address in a redfish URL", strict, inv{macs: []string{"52:54:00:ff:00:08"}, bmc: "10.10.0.70"}, byMappedV4, ""},
		{"MAC and shared BMC beat BMC alone", strict, inv{macs: []string{"52:54:00:00:09:01"}, bmc: "10.10.0.9"}, aggregated, ""},
		{"shared BMC alone is a tie", strict, inv{macs: []string{"52:54:00:ff:00:04"}, bmc: "10.10.0.9"}, testNode{}, ""},
		{"MACs of one node, BMC of another", strict, inv{macs: []string{"52:54:00:00:05:01"}, bmc: "10.10.0.5"}, testNode{}, "conflicting evidence"},
		{"same serial on two nodes", strict, inv{macs: []string{"52:54:00:ff:00:05"}, serial: "SN-TWIN-1"}, testNode{}, "tie"},
		{"placeholder serials prove nothing", strict, inv{macs: []string{"52:54:00:ff:00:06"}, serial: "To Be Filled By O.E.M."}, testNode{}, ""},
		{"active never", fast, inv{macs: []string{"52:54:00:00:06:01"}}, testNode{}, "does not expect an agent"},
		{"enroll without fast track", strict, inv{macs: []string{"52:54:00:00:07:01"}}, testNode{}, "does not expect an agent"},
		{"enroll with fast track", fast, inv{macs: []string{"52:54:00:00:07:01"}}, enrolled, ""},
		{"unknown machine", strict, inv{macs: []string{"52:54:00:ee:ee:ee"}, bmc: "10.99.0.1", serial: "NOBODY-1"}, testNode{}, ""},
	}
	var notFound []string
	for _, tc := range tests {
		r := tc.s.lookup(t, tc.inv)
		if tc.want.UUID == "" {
			if r.Status != 404 {
				t.Errorf("%s: %d %s, want 404", tc.name, r.Status, r.Body)
			}
			notFound = append(notFound, string(r.Body))
			continue
		}
		if r.Status != 200 {
			t.Errorf("%s: %d %s, want 200", tc.name, r.Status, r.Body)
			continue
		}
		if got := r.json(t)["node_uuid"]; got != tc.want.UUID {
			t.Errorf("%s: found %v, want %s", tc.name, got, tc.want.UUID)
		}
	}
	for _, b := range notFound[1:] {
		if b != notFound[0] {
			t.Errorf("404 bodies differ, leaking why: %q vs %q", b, notFound[0])
		}
	}
	for _, c := range []struct {
		n    testNode
		want string
	}{
		{conflictMAC, "conflicting evidence"}, {conflictBMC, "conflicting evidence"},
		{twinA, "tie"}, {twinB, "tie"},
		{active, `provision state "active" does not expect an agent`},
		{enrolled, `provision state "enroll" does not expect an agent`},
	} {
		if ev := history(t, db, c.n); !hasEvent(ev, c.want) {
			t.Errorf("node %s history %q does not say %q", c.n.UUID, ev, c.want)
		}
	}
	// Agents retry: a refusal is recorded once per episode, not per request.
	before := len(history(t, db, active))
	for i := 0; i < 3; i++ {
		fast.lookup(t, inv{macs: []string{"52:54:00:00:06:01"}})
	}
	if after := len(history(t, db, active)); after != before {
		t.Errorf("repeated refusals grew the history from %d to %d entries", before, after)
	}
	// The agent API never put a secret of driver_info on the wire.
	r := strict.lookup(t, inv{macs: []string{"52:54:00:ff:00:01"}, bmc: "10.10.0.2"})
	if strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "ipmi_password") {
		t.Errorf("lookup leaked driver_info: %s", r.Body)
	}
}

func TestIPALookupRules(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	deploying := seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, macs: []string{"52:54:00:00:00:01"}})
	seedNode(t, db, nodeSeed{state: conductor.StateEnroll, macs: []string{"52:54:00:00:00:02"}})
	seedNode(t, db, nodeSeed{state: conductor.StateActive, macs: []string{"52:54:00:00:00:03"}})
	seedNode(t, db, nodeSeed{state: conductor.StateCleanWait, macs: []string{"52:54:00:00:00:04"}})
	seedNode(t, db, nodeSeed{state: conductor.StateCleanWait, macs: []string{"52:54:00:00:00:05"}})
	other := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait})

	strict, fast := newStack(t, db, stackOptions{}), newStack(t, db, stackOptions{fastTrack: true})
	tests := []struct {
		name  string
		s     *stack
		query string
		want  int
	}{
		{"waiting node", strict, "addresses=52:54:00:00:00:01", 200},
		// A UUID alone, or with a MAC of no node or of none of its own, is not
		// enough: anyone who knows it would take the boot's token.
		{"node_uuid alone", strict, "node_uuid=" + deploying.UUID, 400},
		{"node_uuid and an unknown MAC", strict, "addresses=52:54:00:00:00:99&node_uuid=" + deploying.UUID, 404},
		{"node_uuid and its own MAC", strict, "addresses=52:54:00:00:00:01&node_uuid=" + deploying.UUID, 200},
		{"node_uuid contradicted by a MAC", strict, "addresses=52:54:00:00:00:04&node_uuid=" + other.UUID, 404},
		{"enroll without fast track", strict, "addresses=52:54:00:00:00:02", 404},
		{"enroll with fast track", fast, "addresses=52:54:00:00:00:02", 200},
		{"active never", fast, "addresses=52:54:00:00:00:03", 404},
		{"unknown MAC", strict, "addresses=52:54:00:00:00:99", 404},
		{"unknown node_uuid", strict, "addresses=52:54:00:00:00:01&node_uuid=6d85703a-565d-469a-96ce-30b6de53079d", 404},
		{"MACs of two nodes", strict, "addresses=52:54:00:00:00:04,52:54:00:00:00:05", 404},
		{"no valid MAC", strict, "addresses=zz,12", 400},
		{"no addresses", strict, "", 400},
		{"node_uuid not a UUID", strict, "node_uuid=../etc", 400},
	}
	for _, tc := range tests {
		r := do(t, defaultClient, "GET", tc.s.url+"/v1/lookup?"+tc.query, nil, "X-OpenStack-Ironic-API-Version", "1.62")
		if r.Status != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.Status, tc.want, r.Body)
		}
	}
}

// TestTokenRevealedOncePerBoot: the first lookup of a boot gets the agent
// token (a JWT with the claims the issue requires), every later one
// "******", in both forms, and of 20 simultaneous lookups exactly one gets
// it; revoking the tokens (a new boot) allows a new reveal.
func TestTokenRevealedOncePerBoot(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	n := seedNode(t, db, nodeSeed{state: conductor.StateCleanWait, macs: []string{"52:54:00:00:00:01"}})
	s := newStack(t, db, stackOptions{})
	machine := inv{macs: []string{"52:54:00:00:00:01"}}

	tok := s.mustLookup(t, machine)
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &token.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	claims := parsed.Claims.(*token.Claims)
	aud, _ := claims.GetAudience()
	if parsed.Header["kid"] != "ag1" || parsed.Header["alg"] != "HS256" || claims.Subject != n.UUID ||
		len(aud) != 1 || aud[0] != token.AudienceAgent || claims.Issuer != testIssuer || claims.Generation != 1 ||
		claims.ExpiresAt == nil || claims.ExpiresAt.Before(time.Now()) {
		t.Errorf("token header %v claims %+v", parsed.Header, claims)
	}
	if got := s.lookup(t, machine).json(t)["token"]; got != "******" {
		t.Errorf("second native lookup got token %v, want ******", got)
	}
	r := do(t, defaultClient, "GET", s.url+"/v1/lookup?addresses=52:54:00:00:00:01", nil)
	if got := r.json(t)["config"].(map[string]any)["agent_token"]; got != "******" {
		t.Errorf("IPA lookup after the reveal got %v, want ******", got)
	}
	if !hasEvent(history(t, db, n), "agent token of boot 1 was handed out") {
		t.Error("the reveal is not in the node history")
	}

	// A new boot: 20 lookups at once, exactly one token.
	if err := store.RevokeAgentTokens(context.Background(), db, n.ID, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tokens, masked := 0, 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := do(t, defaultClient, "POST", s.url+"/v1/lookup", machine.json())
			var body struct{ Token string }
			_ = json.Unmarshal(r.Body, &body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Status == 200 && body.Token == "******":
				masked++
			case r.Status == 200 && len(body.Token) > 32:
				tokens++
				parsed, _, _ := jwt.NewParser().ParseUnverified(body.Token, &token.Claims{})
				if g := parsed.Claims.(*token.Claims).Generation; g != 2 {
					t.Errorf("token of generation %d after one revocation, want 2", g)
				}
			default:
				t.Errorf("lookup: %d %s", r.Status, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if tokens != 1 || masked != 19 {
		t.Errorf("20 simultaneous lookups: %d tokens and %d masked, want 1 and 19", tokens, masked)
	}
	// The old token died with its boot.
	if r := s.checkin(t, tok, nil); r.Status != 401 {
		t.Errorf("checkin with the previous boot's token: %d, want 401", r.Status)
	}
}

// TestRefusalsRecordedOncePerEpisode: refused lookups of one node from ever
// new source addresses (anyone on the VLAN can send them) add one history
// entry, not one per address.
func TestRefusalsRecordedOncePerEpisode(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{api: agentapi.Options{TrustedProxies: []string{"127.0.0.0/8"}}})
	n := seedNode(t, db, nodeSeed{state: conductor.StateActive, macs: []string{"52:54:00:00:0c:01"}})
	for i := 1; i <= 5; i++ {
		r := do(t, defaultClient, "POST", s.url+"/v1/lookup", inv{macs: []string{"52:54:00:00:0c:01"}}.json(),
			"Content-Type", "application/json", "X-Forwarded-For", fmt.Sprintf("10.20.0.%d", i))
		if r.Status != 404 {
			t.Fatalf("lookup %d: %d, want 404", i, r.Status)
		}
	}
	if c := count(t, db, `SELECT count(*) FROM node_history WHERE node_id = $1 AND severity = 'WARNING'`, n.ID); c != 1 {
		t.Errorf("%d history entries for five refused lookups from five addresses, want 1", c)
	}
	// A refusal of another kind is recorded all the same.
	seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, driverInfo: map[string]any{"ipmi_address": "10.20.9.9"}})
	r := do(t, defaultClient, "POST", s.url+"/v1/lookup", inv{macs: []string{"52:54:00:00:0c:01"}, bmc: "10.20.9.9"}.json(),
		"Content-Type", "application/json", "X-Forwarded-For", "10.20.0.9")
	if r.Status != 404 {
		t.Fatalf("conflicting lookup: %d, want 404", r.Status)
	}
	if c := count(t, db, `SELECT count(DISTINCT event_type) FROM node_history WHERE node_id = $1 AND severity = 'WARNING'`, n.ID); c != 2 {
		t.Errorf("%d kinds of refusal recorded, want 2 (wrong state, then conflicting evidence)", c)
	}
}
