package publicapi_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestUnversionedPathsServeV1: a path without a version is served as under
// /v1, as Ironic's root routes it (the tempest plugin's client builds such
// paths); the root document keeps its own.
func TestUnversionedPathsServeV1(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	id := s.createNode(t, `{"driver": "fake"}`)
	must(t, s.do(t, "POST", "/ports", `{"node_uuid": "`+id+`", "address": "52:54:00:12:34:56"}`, h...), 201)
	ports := jsonOf(t, must(t, s.do(t, "GET", "/ports/detail?address=52:54:00:12:34:56", "", h...), 200))
	if list := ports["ports"].([]any); len(list) != 1 || list[0].(map[string]any)["node_uuid"] != id {
		t.Errorf("/ports/detail?address=: %v", ports)
	}
	props := jsonOf(t, must(t, s.do(t, "GET", "/drivers/fake/properties", "", h...), 200))
	if len(props) == 0 {
		t.Error("/drivers/fake/properties is empty")
	}
	must(t, s.do(t, "GET", "/nodes/"+id+"/", "", h...), 200)
	if root := jsonOf(t, must(t, s.do(t, "GET", "/", "", h...), 200)); root["default_version"] == nil {
		t.Errorf("root document: %v", root)
	}
	must(t, s.do(t, "GET", "/nowhere", "", h...), 404)
}

// TestNodeTraits: list, replace, add and remove a node's traits (1.37),
// Ironic's validation and limit, and its answers to older versions.
func TestNodeTraits(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	id := s.createNode(t, `{"driver": "fake"}`)
	traits := func() string {
		return fmt.Sprint(jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/traits", "", h...), 200))["traits"])
	}
	if got := traits(); got != "[]" {
		t.Errorf("traits of a new node: %s", got)
	}
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits", `{"traits": ["HW_CPU_X86_VMX", "CUSTOM_GOLD", "CUSTOM_GOLD"]}`, h...), 204)
	if got := traits(); got != "[CUSTOM_GOLD HW_CPU_X86_VMX]" {
		t.Errorf("after PUT: %s", got)
	}
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits/CUSTOM_SILVER", "", h...), 204)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits/CUSTOM_SILVER", "{}", h...), 204)
	if got := traits(); got != "[CUSTOM_GOLD CUSTOM_SILVER HW_CPU_X86_VMX]" {
		t.Errorf("after adding one twice: %s", got)
	}
	if d := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"?fields=traits", "", h...), 200)); fmt.Sprint(d["traits"]) != "[CUSTOM_GOLD CUSTOM_SILVER HW_CPU_X86_VMX]" {
		t.Errorf("traits in the node: %v", d["traits"])
	}
	for _, bad := range []string{"gold", "HW_NOT_A_STANDARD_TRAIT", "CUSTOM_" + strings.Repeat("X", 249)} {
		must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits/"+bad, "", h...), 400)
	}
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits/CUSTOM_"+strings.Repeat("X", 248), "", h...), 204)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits/CUSTOM_Y", `{"traits": []}`, h...), 400)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits", `{}`, h...), 400)
	var fifty []string
	for i := range 51 {
		fifty = append(fifty, fmt.Sprintf(`"CUSTOM_T%d"`, i))
	}
	r := must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits", `{"traits": [`+strings.Join(fifty, ",")+`]}`, h...), 400)
	if !strings.Contains(string(r.body), "maximum number of traits per node (51 vs. 50)") {
		t.Errorf("51 traits: %s", r.body)
	}
	must(t, s.do(t, "DELETE", "/v1/nodes/"+id+"/traits/CUSTOM_GOLD", "", h...), 204)
	must(t, s.do(t, "DELETE", "/v1/nodes/"+id+"/traits/CUSTOM_GOLD", "", h...), 404)
	must(t, s.do(t, "DELETE", "/v1/nodes/"+id+"/traits", "", h...), 204)
	if got := traits(); got != "[]" {
		t.Errorf("after removing all: %s", got)
	}
	must(t, s.do(t, "GET", "/v1/nodes/1be26c0b-03f2-4d2e-ae87-c02d7f33c123/traits", "", h...), 404)

	old := as(t, "admin", "1.36")
	must(t, s.do(t, "GET", "/v1/nodes/"+id+"/traits", "", old...), 406)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/traits", `{"traits": []}`, old...), 405)
	must(t, s.do(t, "DELETE", "/v1/nodes/"+id+"/traits", "", old...), 404)
	if d := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id, "", old...), 200)); d["traits"] != nil {
		t.Errorf("traits shown at 1.36: %v", d["traits"])
	}
}

// TestNodeConsoleAndRAID: the fake console records its mode; no-console
// answers as Ironic's; a target RAID configuration is checked and stored.
func TestNodeConsoleAndRAID(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	id := s.createNode(t, `{"driver": "fake"}`)
	console := func(path string) string {
		d := jsonOf(t, must(t, s.do(t, "GET", path, "", h...), 200))
		return fmt.Sprint(d["console_enabled"], " ", d["console_info"])
	}
	if got := console("/v1/nodes/" + id + "/states/console"); got != "false <nil>" {
		t.Errorf("console of a new node: %s", got)
	}
	r := must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/states/console", `{"enabled": true}`, h...), 202)
	if !strings.HasSuffix(r.header.Get("Location"), "/v1/nodes/"+id+"/states/console") {
		t.Errorf("Location: %q", r.header.Get("Location"))
	}
	if got := console("/v1/nodes/states/console/" + id); got != "true map[]" {
		t.Errorf("console after enabling, at the tempest plugin's path: %s", got)
	}
	if d := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id, "", h...), 200)); d["console_enabled"] != true {
		t.Errorf("node console_enabled: %v", d["console_enabled"])
	}
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/states/console", `{}`, h...), 400)

	plain := s.createNode(t, `{"driver": "fake", "console_interface": "no-console", "raid_interface": "no-raid"}`)
	r = must(t, s.do(t, "PUT", "/v1/nodes/"+plain+"/states/console", `{"enabled": true}`, h...), 400)
	if !strings.Contains(string(r.body), "Driver fake does not support console (disabled or not implemented).") {
		t.Errorf("console with no-console: %s", r.body)
	}
	if got := console("/v1/nodes/" + plain + "/states/console"); got != "false <nil>" {
		t.Errorf("GET console with no-console: %s", got)
	}

	config := `{"logical_disks": [{"size_gb": 100, "raid_level": "1", "is_root_volume": true}]}`
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/states/raid", config, as(t, "admin", "1.11")...), 406)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/states/raid", config, h...), 204)
	states := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/states", "", h...), 200))
	if got := fmt.Sprint(states["target_raid_config"]); got != "map[logical_disks:[map[is_root_volume:true raid_level:1 size_gb:100]]]" {
		t.Errorf("target_raid_config: %s", got)
	}
	for _, bad := range []string{
		`{"logical_disks": [{"size_gb": 100, "raid_level": "7"}]}`,
		`{"logical_disks": [{"size_gb": -1, "raid_level": "1"}]}`,
		`{"logical_disks": [{"raid_level": "1"}]}`,
		`{"logical_disks": []}`,
		`{"disks": []}`,
		`{"logical_disks": [{"size_gb": "MAX", "raid_level": "1", "colour": "red"}]}`,
		`{"logical_disks": [{"size_gb": 1, "raid_level": "1", "physical_disks": ["a"]}]}`,
	} {
		if r := must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/states/raid", bad, h...), 400); !strings.Contains(string(r.body), "RAID config validation error") {
			t.Errorf("%s: %s", bad, r.body)
		}
	}
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/states/raid", `{}`, h...), 204)
	if d := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id, "", h...), 200)); fmt.Sprint(d["target_raid_config"]) != "map[]" {
		t.Errorf("target_raid_config after clearing: %v", d["target_raid_config"])
	}
	must(t, s.do(t, "PUT", "/v1/nodes/"+plain+"/states/raid", config, h...), 404)

	props := jsonOf(t, must(t, s.do(t, "GET", "/v1/drivers/fake/raid/logical_disk_properties", "", h...), 200))
	if !strings.HasSuffix(props["raid_level"].(string), "Required.") || len(props) != 10 {
		t.Errorf("RAID logical disk properties: %v", props)
	}
	must(t, s.do(t, "GET", "/v1/drivers/fake/raid/logical_disk_properties", "", as(t, "admin", "1.11")...), 406)
	must(t, s.do(t, "GET", "/v1/drivers/ghost/raid/logical_disk_properties", "", h...), 404)
}

// TestNodeHistory: GET /v1/nodes/{node}/history (1.78) lists what the
// node's history holds, maintenance and boot device changes included, with
// paging and detail, and long events cut as Ironic cuts them.
func TestNodeHistory(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := latest(t)
	id := s.createNode(t, `{"driver": "fake"}`)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/maintenance", `{"reason": "fan"}`, h...), 202)
	must(t, s.do(t, "PUT", "/v1/nodes/"+id+"/management/boot_device", `{"boot_device": "pxe"}`, h...), 204)
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "replace", "path": "/maintenance", "value": false}]`, h...), 200)
	long := strings.Repeat("x", 300)
	if _, err := s.DB.Exec(`INSERT INTO node_history (uuid, node_id, severity, event_type, event)
		SELECT gen_random_uuid(), id, 'ERROR', 'provision', $2 FROM nodes WHERE uuid = $1`, id, long); err != nil {
		t.Fatal(err)
	}

	list := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history", "", h...), 200))["history"].([]any)
	var events []string
	for _, e := range list {
		events = append(events, e.(map[string]any)["event"].(string))
	}
	if len(events) != 4 || events[0] != "Maintenance set: fan" || events[1] != "Boot device set to pxe (persistent: false)." ||
		events[2] != "Maintenance unset." || events[3] != strings.Repeat("x", 251)+"..." {
		t.Errorf("history events: %q", events)
	}
	first := list[0].(map[string]any)
	if _, ok := first["event_type"]; ok || first["severity"] != "INFO" || first["links"] == nil {
		t.Errorf("a summary event: %v", first)
	}
	detail := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history?detail=true", "", h...), 200))["history"].([]any)
	if d := detail[0].(map[string]any); d["event_type"] != "maintenance" || d["user"] != "test-admin" {
		t.Errorf("a detailed event: %v", d)
	}
	page := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history?limit=1", "", h...), 200))
	if items := page["history"].([]any); len(items) != 1 || page["next"] == nil {
		t.Errorf("page of one: %v", page)
	}
	marker := first["uuid"].(string)
	rest := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history?marker="+marker, "", h...), 200))["history"].([]any)
	if len(rest) != 3 {
		t.Errorf("after the marker: %d events, want 3", len(rest))
	}
	lastUUID := list[3].(map[string]any)["uuid"].(string)
	one := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history/"+lastUUID, "", h...), 200))
	if one["event"] != long || one["severity"] != "ERROR" {
		t.Errorf("one event: %v", one)
	}
	must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history/1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "", h...), 404)
	must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history", "", as(t, "admin", "1.77")...), 404)
	must(t, s.do(t, "GET", "/v1/nodes/"+id+"/history?marker=nope", "", h...), 400)
}
