package publicapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
)

// runConductor runs a conductor over the server's database until the test
// ends, so queued work is carried out.
func (s *server) runConductor(t *testing.T) {
	t.Helper()
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	c := conductor.New(s.DB, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), conductor.Options{Name: "test-conductor"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = c.RunWorkers(ctx, conductor.WorkerConfig{Pools: map[string]int{conductor.PoolOperator: 4}, PollInterval: 10 * time.Millisecond})
	}()
	go func() { defer wg.Done(); _ = c.RunPeriodic(ctx, conductor.PeriodicConfig{}) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		_ = s.DB.Get(&n, `SELECT count(*) FROM conductors`)
		if n == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("conductor did not register")
}

func waitNode(t *testing.T, client *gophercloud.ServiceClient, id string, done func(*nodes.Node) bool) *nodes.Node {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := nodes.Get(context.Background(), client, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if done(n) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s never reached the expected state", id)
	return nil
}

// TestGophercloudProvisioningAndPower drives a fake node's life cycle,
// power, boot device and vendor passthru through gophercloud, as Metal3 does.
func TestGophercloudProvisioningAndPower(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.runConductor(t)
	client := s.gopherClient(t, "admin")
	ctx := context.Background()
	created, err := nodes.Create(ctx, client, nodes.CreateOpts{Name: "metal3-like", Driver: "fake"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := created.UUID

	for _, step := range []struct {
		opts  nodes.ProvisionStateOpts
		final string
	}{
		{nodes.ProvisionStateOpts{Target: nodes.TargetManage}, "manageable"},
		{nodes.ProvisionStateOpts{Target: nodes.TargetProvide}, "available"},
		{nodes.ProvisionStateOpts{Target: nodes.TargetActive, ConfigDrive: "H4sICDw...base64"}, "active"},
	} {
		if err := nodes.ChangeProvisionState(ctx, client, id, step.opts).ExtractErr(); err != nil {
			t.Fatalf("%s: %v", step.opts.Target, err)
		}
		// Right after the 202, the node shows the operation in flight or done,
		// never the old stable state without a target.
		now, _ := nodes.Get(ctx, client, id).Extract()
		if now.ProvisionState != step.final && now.TargetProvisionState != step.final {
			t.Fatalf("after %s answered: state %q target %q", step.opts.Target, now.ProvisionState, now.TargetProvisionState)
		}
		waitNode(t, client, id, func(n *nodes.Node) bool { return n.ProvisionState == step.final && n.TargetProvisionState == "" })
	}
	active, _ := nodes.Get(ctx, client, id).Extract()
	if active.InstanceInfo["configdrive"] != "******" {
		t.Errorf("configdrive not stored masked: %v", active.InstanceInfo["configdrive"])
	}
	if active.PowerState != "power on" {
		t.Errorf("active node power %q", active.PowerState)
	}

	if err := nodes.ChangePowerState(ctx, client, id, nodes.PowerStateOpts{Target: nodes.SoftPowerOff, Timeout: 30}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitNode(t, client, id, func(n *nodes.Node) bool { return n.PowerState == "power off" && n.TargetPowerState == "" })

	if err := nodes.SetBootDevice(ctx, client, id, nodes.BootDeviceOpts{BootDevice: "pxe", Persistent: false}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	bd, err := nodes.GetBootDevice(ctx, client, id).Extract()
	if err != nil || bd.BootDevice != "pxe" || bd.Persistent {
		t.Errorf("boot device %+v %v", bd, err)
	}
	supported, err := nodes.GetSupportedBootDevices(ctx, client, id).Extract()
	if err != nil || !strings.Contains(strings.Join(supported, ","), "pxe") {
		t.Errorf("supported boot devices %v %v", supported, err)
	}

	methods, err := nodes.GetVendorPassthruMethods(ctx, client, id).Extract()
	if err != nil || methods == nil {
		t.Fatalf("passthru methods: %v", err)
	}
	echo, err := nodes.CallVendorPassthru(ctx, client, id, "POST", nodes.VendorPassthruCallOpts{Method: "echo", Body: map[string]any{"ping": "pong"}}).Extract()
	if err != nil || echo["ping"] != "pong" {
		t.Errorf("echo passthru: %v %v", echo, err)
	}
	r := nodes.CallVendorPassthru(ctx, client, id, "POST", nodes.VendorPassthruCallOpts{Method: "slow"})
	if r.Err != nil || r.StatusCode != http.StatusAccepted {
		t.Errorf("async passthru: status %d err %v", r.StatusCode, r.Err)
	}
}

// TestActionErrors: every refusal is a precise 4xx in Ironic's format and
// changes nothing.
func TestActionErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if err := store.RegisterConductor(context.Background(), s.DB, "idle", []string{"fake"}, ""); err != nil {
		t.Fatal(err)
	}
	id := s.createNode(t, `{"driver": "fake", "name": "target"}`)
	auth := latest(t)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		msg                      string
	}{
		{"unknown verb", "PUT", "/states/provision", `{"target": "explode"}`, auth, 400, "not a valid provision state target"},
		{"invalid transition", "PUT", "/states/provision", `{"target": "active"}`, auth, 400, "can not be performed"},
		{"clean without steps", "PUT", "/states/provision", `{"target": "clean"}`, auth, 400, "clean_steps"},
		{"configdrive with manage", "PUT", "/states/provision", `{"target": "manage", "configdrive": "x"}`, auth, 400, "configdrive"},
		{"verb too new", "PUT", "/states/provision", `{"target": "deploy"}`, as(t, "admin", "1.72"), 406, "1.73"},
		{"bad power target", "PUT", "/states/power", `{"target": "power sideways"}`, auth, 400, "Invalid power target"},
		{"soft power too old", "PUT", "/states/power", `{"target": "soft power off"}`, as(t, "admin", "1.26"), 406, "1.27"},
		{"zero timeout", "PUT", "/states/power", `{"target": "power on", "timeout": 0}`, auth, 400, "timeout"},
		{"timeout past a day", "PUT", "/states/power", `{"target": "soft power off", "timeout": 10000000000}`, auth, 400, "from 1 to 86400"},
		{"timeout past int64", "PUT", "/states/power", `{"target": "soft power off", "timeout": 99999999999999999999}`, auth, 400, "timeout"},
		{"unknown field", "PUT", "/states/power", `{"target": "power on", "force": true}`, auth, 400, "Unknown attribute"},
		{"reader may not act", "PUT", "/states/power", `{"target": "power on"}`, as(t, "reader", "1.81"), 403, "role"},
		{"reader may not provision", "PUT", "/states/provision", `{"target": "manage"}`, as(t, "reader", "1.81"), 403, "role"},
		{"reader may not set the boot device", "PUT", "/management/boot_device", `{"boot_device": "pxe"}`, as(t, "reader", "1.81"), 403, "role"},
		{"reader may not call passthru", "POST", "/vendor_passthru/echo", `{}`, as(t, "reader", "1.81"), 403, "role"},
		{"no boot device", "PUT", "/management/boot_device", `{"persistent": true}`, auth, 400, "boot_device"},
		{"unknown boot device", "PUT", "/management/boot_device", `{"boot_device": "floppy"}`, auth, 400, "Invalid boot device"},
		{"passthru bad JSON", "POST", "/vendor_passthru/echo", `{"a":`, auth, 400, "not valid JSON"},
		{"passthru unknown method", "POST", "/vendor_passthru?method=nope", `{}`, auth, 400, "No handler"},
		{"passthru no method", "POST", "/vendor_passthru", `{}`, auth, 400, "Method not specified"},
		{"passthru wrong verb", "DELETE", "/vendor_passthru/slow", ``, auth, 400, "does not support HTTP DELETE"},
	}
	before := snapshot(t, s.DB)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, "/v1/nodes/"+id+tc.path, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if msg := faultString(t, r.body); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not mention %q", msg, tc.msg)
			}
		})
	}
	if after := snapshot(t, s.DB); after != before {
		t.Errorf("refused requests changed the database:\nbefore %s\nafter  %s", before, after)
	}

	// A held lock: 409 at once, naming the holder.
	var nodeID int64
	_ = s.DB.Get(&nodeID, `SELECT id FROM nodes WHERE uuid = $1`, id)
	if _, err := store.AcquireNodeLock(context.Background(), s.DB, nodeID, "busy-conductor", time.Minute); err != nil {
		t.Fatal(err)
	}
	r := s.do(t, "PUT", "/v1/nodes/"+id+"/states/power", `{"target": "power on"}`, auth...)
	if r.status != 409 || !strings.Contains(faultString(t, r.body), "busy-conductor") {
		t.Errorf("locked node: %d %s", r.status, r.body)
	}
	if doc := jsonOf(t, s.do(t, "GET", "/v1/nodes/"+id, "", auth...)); doc["reservation"] != "busy-conductor" {
		t.Errorf("reservation shown as %v", doc["reservation"])
	}
	// On a locked node, a provision action its state allows is 409, one it
	// forbids 400 (the transition is judged first, as in Ironic).
	if r := s.do(t, "PUT", "/v1/nodes/"+id+"/states/provision", `{"target": "manage"}`, auth...); r.status != 409 {
		t.Errorf("allowed provision action on a locked node: %d, want 409", r.status)
	}
	if r := s.do(t, "PUT", "/v1/nodes/"+id+"/states/provision", `{"target": "active"}`, auth...); r.status != 400 {
		t.Errorf("forbidden provision action on a locked node: %d, want 400", r.status)
	}
}

// TestMemberActs: the member role may act on nodes (power, provision, boot
// device, passthru) but not change them, and a 202 points at the node's
// states.
func TestMemberActs(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if err := store.RegisterConductor(context.Background(), s.DB, "idle", []string{"fake"}, ""); err != nil {
		t.Fatal(err)
	}
	id := s.createNode(t, `{"driver": "fake", "name": "acted-on"}`)
	member := as(t, "member", "1.81")
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"power", "PUT", "/states/power", `{"target": "power on"}`, 202},
		{"provision", "PUT", "/states/provision", `{"target": "manage"}`, 202},
		{"boot device", "PUT", "/management/boot_device", `{"boot_device": "pxe"}`, 204},
		{"passthru", "POST", "/vendor_passthru/echo", `{"ping": "pong"}`, 200},
		{"patch", "PATCH", "", `[{"op": "add", "path": "/extra/a", "value": 1}]`, 403},
		{"delete", "DELETE", "", ``, 403},
	} {
		r := s.do(t, tc.method, "/v1/nodes/"+id+tc.path, tc.body, member...)
		if r.status != tc.status {
			t.Errorf("%s as member: %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if tc.status == 202 {
			if loc := r.header.Get("Location"); loc != s.URL+"/v1/nodes/"+id+"/states" {
				t.Errorf("%s: Location %q, want %q", tc.name, loc, s.URL+"/v1/nodes/"+id+"/states")
			}
		}
		if tc.name == "power" { // no conductor runs here to finish it, and it would refuse the next action
			if _, err := s.DB.Exec(`UPDATE nodes SET target_power_state = NULL WHERE uuid = $1`, id); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestNodeInventoryRoute: GET /v1/nodes/{node}/inventory answers what the
// agent reported, from API 1.81, to readers; 404 before any inspection.
func TestNodeInventoryRoute(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	id := s.createNode(t, `{"driver": "fake", "name": "inspected"}`)
	path := "/v1/nodes/" + id + "/inventory"
	if r := s.do(t, "GET", path, "", as(t, "reader", "1.81")...); r.status != 404 || !strings.Contains(faultString(t, r.body), "no inventory") {
		t.Fatalf("before inspection: %d %s, want 404", r.status, r.body)
	}
	var nodeID int64
	if err := s.DB.Get(&nodeID, `SELECT id FROM nodes WHERE uuid = $1`, id); err != nil {
		t.Fatal(err)
	}
	_, err := store.SaveInventory(context.Background(), s.DB, &store.Inventory{NodeID: nodeID,
		Inventory:  store.JSONObject{"interfaces": []any{map[string]any{"mac_address": "52:54:00:00:00:01"}}},
		PluginData: store.JSONObject{"root_disk": "sda"}, TokenGeneration: 1, SourceAddress: "10.20.0.5"}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := must(t, s.do(t, "GET", path, "", as(t, "reader", "1.81")...), 200)
	doc := jsonOf(t, r)
	ifaces, _ := doc["inventory"].(map[string]any)["interfaces"].([]any)
	if len(ifaces) != 1 || doc["plugin_data"].(map[string]any)["root_disk"] != "sda" {
		t.Errorf("inventory document %s", r.body)
	}
	if r := s.do(t, "GET", path, "", as(t, "reader", "1.80")...); r.status != 404 {
		t.Errorf("at 1.80: %d, want 404 (the route is 1.81's)", r.status)
	}
	if r := s.do(t, "GET", path, ""); r.status != 401 {
		t.Errorf("without credentials: %d, want 401", r.status)
	}
}

// TestDriverVendorPassthru drives the fake driver's driver-level methods
// through both URL forms, lists them, and fills the pool of synchronous
// calls: the next call is 503 at once.
func TestDriverVendorPassthru(t *testing.T) {
	t.Parallel()
	s := newCustomServer(t, publicapi.NewJWTAuth(testKeys, issuer), conductor.Options{SyncCallWorkers: 1, SyncCallTimeout: 10 * time.Second})
	member := as(t, "member", "1.81")

	methods := jsonOf(t, must(t, s.do(t, "GET", "/v1/drivers/fake/vendor_passthru/methods", "", member...), 200))
	if _, ok := methods["echo"]; !ok {
		t.Fatalf("methods %v lack echo", methods)
	}
	for _, path := range []string{"/v1/drivers/fake/vendor_passthru?method=echo", "/v1/drivers/fake/vendor_passthru/echo"} {
		if got := jsonOf(t, must(t, s.do(t, "POST", path, `{"ping": "pong"}`, member...), 200)); got["ping"] != "pong" {
			t.Errorf("%s answered %v", path, got)
		}
	}
	if r := s.do(t, "POST", "/v1/drivers/fake/vendor_passthru/nope", `{}`, member...); r.status != 400 {
		t.Errorf("unknown method: %d, want 400", r.status)
	}
	if r := s.do(t, "POST", "/v1/drivers/fake/vendor_passthru/echo", `{}`, as(t, "reader", "1.81")...); r.status != 403 {
		t.Errorf("reader: %d, want 403", r.status)
	}

	// A sleeper holds the only worker; an echo then is 503 at once. (A
	// sleeper that arrives while an echo holds the worker is itself 503:
	// it is sent again.)
	slept := make(chan int, 1)
	sleep := func() { slept <- s.send("POST", "/v1/drivers/fake/vendor_passthru/sleep", `{"seconds": 2}`, member) }
	go sleep()
	deadline := time.Now().Add(10 * time.Second)
	for busy := false; !busy; {
		select {
		case status := <-slept:
			if status != 503 {
				t.Fatalf("sleep ended with %d before any echo found the pool full", status)
			}
			go sleep()
		default:
		}
		r := s.do(t, "POST", "/v1/drivers/fake/vendor_passthru/echo", `{}`, member...)
		busy = r.status == 503
		if !busy && time.Now().After(deadline) {
			t.Fatalf("no 503 while the only worker sleeps (last %d)", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status := <-slept; status != 200 {
		t.Errorf("sleep: %d, want 200", status)
	}
	must(t, s.do(t, "POST", "/v1/drivers/fake/vendor_passthru/echo", `{}`, member...), 200)
}
