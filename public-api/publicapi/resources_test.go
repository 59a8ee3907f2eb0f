package publicapi_test

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestSecretsMaskedOnEveryRead: driver_info, driver_internal_info and
// instance_info secrets are "******" in every document that shows them,
// at any depth, while the database keeps them.
func TestSecretsMaskedOnEveryRead(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	uuid := s.createNode(t, `{"driver": "fake", "name": "m1",
		"driver_info": {"ipmi_address": "10.0.0.1", "ipmi_password": "S3KRIT-1", "redfish_password": "S3KRIT-2",
			"bmc": {"AUTH_TOKEN": "S3KRIT-3", "users": [{"name": "root", "password": "S3KRIT-4"}]}},
		"instance_info": {"image_source": "http://img", "image_url": "http://S3KRIT-5", "configdrive": "S3KRIT-6", "root_gb": 10}}`)
	if _, err := s.DB.Exec(`UPDATE nodes SET driver_internal_info = '{"agent_secret_token": "S3KRIT-7", "agent_url": "http://a"}' WHERE uuid = $1`, uuid); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"S3KRIT"}
	check := func(what string, r response) {
		t.Helper()
		must(t, r, r.status)
		for _, secret := range secrets {
			if strings.Contains(string(r.body), secret) {
				t.Errorf("%s shows the secret %s: %s", what, secret, r.body)
			}
		}
		if !strings.Contains(string(r.body), "******") {
			t.Errorf("%s shows no mask: %s", what, r.body)
		}
	}
	h := latest(t)
	check("show", s.do(t, "GET", "/v1/nodes/"+uuid, "", h...))
	check("show by name", s.do(t, "GET", "/v1/nodes/m1?fields=driver_info,instance_info", "", h...))
	check("list detail", s.do(t, "GET", "/v1/nodes/detail", "", h...))
	check("list detail=true", s.do(t, "GET", "/v1/nodes?detail=true", "", h...))
	check("list fields", s.do(t, "GET", "/v1/nodes?fields=driver_info,driver_internal_info", "", h...))
	check("patch response", s.do(t, "PATCH", "/v1/nodes/"+uuid, `[{"op": "add", "path": "/driver_info/bmc/port", "value": 623}]`, h...))
	check("chassis-less node list", s.do(t, "GET", "/v1/nodes?detail=true&driver=fake", "", h...))

	doc := jsonOf(t, s.do(t, "GET", "/v1/nodes/"+uuid, "", h...))
	info := doc["driver_info"].(map[string]any)
	if info["ipmi_address"] != "10.0.0.1" || info["bmc"].(map[string]any)["port"] != 623.0 {
		t.Errorf("non-secret values must show: %v", info)
	}
	if doc["instance_info"].(map[string]any)["image_source"] != "http://img" {
		t.Errorf("image_source is not a secret: %v", doc["instance_info"])
	}
	var stored string
	if err := s.DB.Get(&stored, `SELECT driver_info::text FROM nodes WHERE uuid = $1`, uuid); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"S3KRIT-1", "S3KRIT-2", "S3KRIT-3", "S3KRIT-4"} {
		if !strings.Contains(stored, secret) {
			t.Errorf("the patch lost the stored secret %s: %s", secret, stored)
		}
	}
}

// TestNodeListFilters checks each filter against seeded nodes.
func TestNodeListFilters(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	chassis := jsonOf(t, must(t, s.do(t, "POST", "/v1/chassis", `{}`, latest(t)...), 201))["uuid"].(string)
	for _, body := range []string{
		`{"driver": "fake", "name": "a", "resource_class": "gpu", "owner": "team-a", "description": "Rack 7, GPU box"}`,
		`{"driver": "fake", "name": "b", "conductor_group": "Rack2", "lessee": "team-b", "chassis_uuid": "` + chassis + `"}`,
		`{"driver": "fake", "name": "c"}`,
	} {
		s.createNode(t, body)
	}
	_, err := s.DB.Exec(`UPDATE nodes SET maintenance = true, fault = 'power failure' WHERE name = 'a';
		UPDATE nodes SET provision_state = 'active', instance_uuid = '6d85703a-565d-469a-96ce-30b6de53079d' WHERE name = 'c'`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"a", "b", "c"}},
		{"maintenance=true", []string{"a"}},
		{"maintenance=false", []string{"b", "c"}},
		{"associated=true", []string{"c"}},
		{"associated=false", []string{"a", "b"}},
		{"provision_state=active", []string{"c"}},
		{"provision_state=enroll", []string{"a", "b"}},
		{"driver=fake", []string{"a", "b", "c"}},
		{"driver=ipmi", nil},
		{"resource_class=gpu", []string{"a"}},
		{"conductor_group=rack2", []string{"b"}},
		{"conductor_group=RACK2", []string{"b"}},
		{"fault=power+failure", []string{"a"}},
		{"owner=team-a", []string{"a"}},
		{"lessee=team-b", []string{"b"}},
		{"instance_uuid=6d85703a-565d-469a-96ce-30b6de53079d", []string{"c"}},
		{"chassis_uuid=" + chassis, []string{"b"}},
		{"description_contains=gpu", []string{"a"}},
		{"description_contains=50%25", nil},
		{"maintenance=false&provision_state=enroll", []string{"b"}},
		{"sort_key=name&sort_dir=desc", []string{"c", "b", "a"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := must(t, s.do(t, "GET", "/v1/nodes?"+tc.query, "", latest(t)...), 200)
			var got []string
			for _, n := range jsonOf(t, r)["nodes"].([]any) {
				got = append(got, n.(map[string]any)["name"].(string))
			}
			if !strings.Contains(tc.query, "sort_key") {
				sort.Strings(got)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	r := must(t, s.do(t, "GET", "/v1/chassis/"+chassis+"/nodes?fields=name,chassis_uuid", "", latest(t)...), 200)
	items := jsonOf(t, r)["nodes"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["name"] != "b" || items[0].(map[string]any)["chassis_uuid"] != chassis {
		t.Errorf("nodes of the chassis = %v", items)
	}
}

// TestListShapesAndPaging checks summary, detail and fields documents and
// the next link that repeats the filters.
func TestListShapesAndPaging(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seedNodes(t, s.DB, 5, "p")
	h := latest(t)
	summary := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes?limit=2&driver=fake", "", h...), 200))
	items := summary["nodes"].([]any)
	if len(items) != 2 {
		t.Fatalf("limit 2 gave %d items", len(items))
	}
	var keys []string
	for k := range items[0].(map[string]any) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"instance_uuid", "links", "maintenance", "name", "power_state", "provision_state", "uuid"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("summary item keys %v, want %v", keys, want)
	}
	next, _ := summary["next"].(string)
	u, err := url.Parse(next)
	if err != nil || u.Query().Get("driver") != "fake" || u.Query().Get("marker") != items[1].(map[string]any)["uuid"] || u.Query().Get("limit") != "2" {
		t.Errorf("next = %q, want the filters, limit and marker repeated", next)
	}
	if links := summary["nodes_links"].([]any); links[0].(map[string]any)["href"] != next {
		t.Errorf("nodes_links %v does not match next", links)
	}
	page2 := jsonOf(t, must(t, s.do(t, "GET", u.RequestURI(), "", h...), 200))
	if got := page2["nodes"].([]any)[0].(map[string]any)["name"]; got != "p-000003" {
		t.Errorf("page 2 starts at %v, want p-000003", got)
	}
	last := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes?limit=10", "", h...), 200))
	if _, ok := last["next"]; ok {
		t.Error("a page that is not full must have no next link")
	}
	fields := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes?fields=name", "", h...), 200))["nodes"].([]any)[0].(map[string]any)
	if len(fields) != 2 || fields["uuid"] == nil || fields["name"] == nil {
		t.Errorf("fields=name item = %v, want uuid and name", fields)
	}
	detail := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/detail?limit=1", "", h...), 200))["nodes"].([]any)[0].(map[string]any)
	if detail["driver_info"] == nil || detail["properties"] == nil || detail["states"] == nil {
		t.Errorf("detail item lacks full fields: %v", detail)
	}
}

// TestChassisLifecycle creates, patches, fills, empties and deletes a
// chassis.
func TestChassisLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	r := must(t, s.do(t, "POST", "/v1/chassis", `{"description": "rack 1", "extra": {"row": "A"}}`, h...), 201)
	ch := jsonOf(t, r)
	id := ch["uuid"].(string)
	if r.header.Get("Location") != s.URL+"/v1/chassis/"+id || ch["description"] != "rack 1" {
		t.Errorf("create: Location %q, doc %v", r.header.Get("Location"), ch)
	}
	patched := jsonOf(t, must(t, s.do(t, "PATCH", "/v1/chassis/"+id, `[{"op": "add", "path": "/extra/col", "value": 3}, {"op": "remove", "path": "/description"}]`, h...), 200))
	if patched["description"] != nil || patched["extra"].(map[string]any)["col"] != 3.0 || patched["extra"].(map[string]any)["row"] != "A" {
		t.Errorf("patched chassis = %v", patched)
	}
	list := jsonOf(t, must(t, s.do(t, "GET", "/v1/chassis", "", h...), 200))["chassis"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["uuid"] != id {
		t.Errorf("chassis list = %v", list)
	}
	node := s.createNode(t, `{"driver": "fake", "chassis_uuid": "`+id+`"}`)
	if got := jsonOf(t, s.do(t, "GET", "/v1/nodes/"+node, "", h...))["chassis_uuid"]; got != id {
		t.Errorf("node chassis_uuid = %v", got)
	}
	must(t, s.do(t, "DELETE", "/v1/chassis/"+id, "", h...), 400)
	must(t, s.do(t, "PATCH", "/v1/nodes/"+node, `[{"op": "remove", "path": "/chassis_uuid"}]`, h...), 200)
	must(t, s.do(t, "DELETE", "/v1/chassis/"+id, "", h...), 204)
	must(t, s.do(t, "GET", "/v1/chassis/"+id, "", h...), 404)
}

// TestPortsOfNodes covers port moves and the per-node port list.
func TestPortsOfNodes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	a, b := s.createNode(t, `{"driver": "fake", "name": "a"}`), s.createNode(t, `{"driver": "fake", "name": "b"}`)
	var ports []string
	for i := range 3 {
		r := must(t, s.do(t, "POST", "/v1/ports", fmt.Sprintf(`{"node_uuid": "a", "address": "52:54:00:00:00:0%d"}`, i), h...), 201)
		ports = append(ports, jsonOf(t, r)["uuid"].(string))
	}
	moved := jsonOf(t, must(t, s.do(t, "PATCH", "/v1/ports/"+ports[0], `[{"op": "replace", "path": "/node_uuid", "value": "b"}]`, h...), 200))
	if moved["node_uuid"] != b {
		t.Errorf("moved port node_uuid = %v, want %s", moved["node_uuid"], b)
	}
	count := func(path string) int {
		return len(jsonOf(t, must(t, s.do(t, "GET", path, "", h...), 200))["ports"].([]any))
	}
	if n := count("/v1/nodes/" + a + "/ports"); n != 2 {
		t.Errorf("node a has %d ports, want 2", n)
	}
	if n := count("/v1/nodes/b/ports/detail"); n != 1 {
		t.Errorf("node b has %d ports, want 1", n)
	}
	if n := count("/v1/ports?node=a&limit=1"); n != 1 {
		t.Errorf("limit 1 gave %d", n)
	}
	must(t, s.do(t, "DELETE", "/v1/ports/"+ports[1], "", h...), 204)
	if n := count("/v1/ports"); n != 2 {
		t.Errorf("%d ports after delete, want 2", n)
	}
}

// TestMaintenanceEndpoints sets and clears maintenance with and without a
// reason, in every body form clients send.
func TestMaintenanceEndpoints(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	uuid := s.createNode(t, `{"driver": "fake"}`)
	if _, err := s.DB.Exec(`UPDATE nodes SET provision_state = 'deploying', target_provision_state = 'active', fault = 'power failure' WHERE uuid = $1`, uuid); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{``, `{}`, `{"reason": null}`, `{"reason": "bad fan"}`} {
		r := s.do(t, "PUT", "/v1/nodes/"+uuid+"/maintenance", body, h...)
		if r.status != 202 || len(r.body) != 0 {
			t.Fatalf("PUT maintenance %q: %d %s, want 202 and no body", body, r.status, r.body)
		}
	}
	doc := jsonOf(t, s.do(t, "GET", "/v1/nodes/"+uuid, "", h...))
	if doc["maintenance"] != true || doc["maintenance_reason"] != "bad fan" {
		t.Errorf("after PUT: maintenance %v reason %v", doc["maintenance"], doc["maintenance_reason"])
	}
	must(t, s.do(t, "DELETE", "/v1/nodes/"+uuid+"/maintenance", "", h...), 202)
	doc = jsonOf(t, s.do(t, "GET", "/v1/nodes/"+uuid, "", h...))
	if doc["maintenance"] != false || doc["maintenance_reason"] != nil || doc["fault"] != nil {
		t.Errorf("after DELETE: %v %v %v", doc["maintenance"], doc["maintenance_reason"], doc["fault"])
	}
	patched := jsonOf(t, must(t, s.do(t, "PATCH", "/v1/nodes/"+uuid, `[{"op": "replace", "path": "/maintenance", "value": true}]`, h...), 200))
	if patched["maintenance"] != true {
		t.Errorf("maintenance via PATCH: %v", patched["maintenance"])
	}
}

// TestValidateNode reports per interface, failing on bad driver_info.
func TestValidateNode(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	good := s.createNode(t, `{"driver": "fake"}`)
	bad := s.createNode(t, `{"driver": "fake", "driver_info": {"fake_latency": "soon"}}`)
	doc := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+good+"/validate", "", h...), 200))
	if len(doc) != 12 {
		t.Errorf("validate has %d interfaces, want Ironic's 12: %v", len(doc), doc)
	}
	if p := doc["power"].(map[string]any); p["result"] != true || p["reason"] != nil {
		t.Errorf("power = %v", p)
	}
	if c := doc["console"].(map[string]any); c["result"] != true {
		t.Errorf("console of the fake driver (fake console) = %v", c)
	}
	if c := doc["rescue"].(map[string]any); c["result"] != nil || c["reason"] != "not supported" {
		t.Errorf("rescue = %v", c)
	}
	noConsole := s.createNode(t, `{"driver": "fake", "console_interface": "no-console"}`)
	doc = jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+noConsole+"/validate", "", h...), 200))
	if c := doc["console"].(map[string]any); c["result"] != nil || c["reason"] != "not supported" {
		t.Errorf("console with no-console = %v", c)
	}
	doc = jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+bad+"/validate", "", h...), 200))
	p := doc["power"].(map[string]any)
	if p["result"] != false || !strings.Contains(p["reason"].(string), "fake_latency") {
		t.Errorf("power with bad driver_info = %v", p)
	}
}
