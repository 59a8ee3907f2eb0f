package publicapi_test

import (
	"strings"
	"testing"
)

// TestEveryErrorPath sends malformed and rule-breaking requests to every
// resource: each must get a precise 4xx in Ironic's format, and together
// they must change nothing.
func TestEveryErrorPath(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	node := s.createNode(t, `{"driver": "fake", "name": "n1", "driver_info": {"ipmi_password": "p", "disks": ["sda"]}}`)
	s.createNode(t, `{"driver": "fake", "name": "n2"}`)
	port := jsonOf(t, must(t, s.do(t, "POST", "/v1/ports", `{"node_uuid": "n1", "address": "52:54:00:00:00:01"}`, latest(t)...), 201))["uuid"].(string)
	must(t, s.do(t, "POST", "/v1/ports", `{"node_uuid": "n2", "address": "52:54:00:00:00:02"}`, latest(t)...), 201)
	chassis := jsonOf(t, must(t, s.do(t, "POST", "/v1/chassis", `{"description": "c1"}`, latest(t)...), 201))["uuid"].(string)
	busy := s.createNode(t, `{"driver": "fake", "name": "busy", "chassis_uuid": "`+chassis+`"}`)
	busyInMaintenance := s.createNode(t, `{"driver": "fake", "name": "busy-in-maintenance"}`)
	if _, err := s.DB.Exec(`UPDATE nodes SET provision_state = 'deploying', target_provision_state = 'active',
		maintenance = (uuid = $2) WHERE uuid IN ($1, $2)`, busy, busyInMaintenance); err != nil {
		t.Fatal(err)
	}
	locked := s.createNode(t, `{"driver": "fake", "name": "locked"}`)
	if _, err := s.DB.Exec(`UPDATE nodes SET reservation = 'conductor-9', reservation_expires_at = now() + interval '1 hour' WHERE uuid = $1`, locked); err != nil {
		t.Fatal(err)
	}
	const unknown = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	nodePath, portPath, chassisPath := "/v1/nodes/"+node, "/v1/ports/"+port, "/v1/chassis/"+chassis
	before := snapshot(t, s.DB)

	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		// Request framing.
		{"unknown path", "GET", "/v1/teapots", ``, 404, "could not be found"},
		{"wrong verb", "PUT", "/v1/nodes", `{}`, 405, "not allowed"},
		{"NUL in the path", "GET", "/v1/nodes/a%00b", ``, 400, "NUL"},
		{"invalid UTF-8 in a filter", "GET", "/v1/nodes?driver=%FF", ``, 400, "UTF-8"},
		{"malformed query", "GET", "/v1/nodes?driver=%zz", ``, 400, "malformed"},
		{"unknown query parameter", "GET", "/v1/nodes?provision_stat=active", ``, 400, `Unknown query parameter "provision_stat"`},
		{"query on a mutation", "POST", "/v1/nodes?debug=1", `{"driver": "fake"}`, 400, "Unknown query parameter"},
		{"oversized body", "POST", "/v1/nodes", `{"driver": "fake", "extra": {"x": "` + strings.Repeat("a", 2<<20) + `"}}`, 413, "too large"},

		// Node create.
		{"malformed JSON", "POST", "/v1/nodes", `{"driver": "fake"`, 400, "truncated"},
		{"not an object", "POST", "/v1/nodes", `["fake"]`, 400, "expected an object"},
		{"unknown field", "POST", "/v1/nodes", `{"driver": "fake", "colour": "red"}`, 400, `Unknown attribute "colour"`},
		{"wrong type", "POST", "/v1/nodes", `{"driver": "fake", "maintenance": true}`, 400, `Unknown attribute "maintenance"`},
		{"wrong type of a JSON field", "POST", "/v1/nodes", `{"driver": "fake", "properties": []}`, 400, "properties"},
		{"bad uuid", "POST", "/v1/nodes", `{"driver": "fake", "uuid": "12345"}`, 400, "UUID"},
		{"duplicate uuid", "POST", "/v1/nodes", `{"driver": "fake", "uuid": "` + node + `"}`, 409, "already exists"},
		{"unknown chassis", "POST", "/v1/nodes", `{"driver": "fake", "chassis_uuid": "` + unknown + `"}`, 400, "Chassis"},
		{"NUL in a field", "POST", "/v1/nodes", `{"driver": "fake", "description": "a\u0000b"}`, 400, "NUL"},
		{"NUL in a JSON key", "POST", "/v1/nodes", `{"driver": "fake", "extra": {"a\u0000": 1}}`, 400, "NUL"},
		{"too long", "POST", "/v1/nodes", `{"driver": "fake", "owner": "` + strings.Repeat("o", 256) + `"}`, 400, "at most 255"},
		{"bad conductor group", "POST", "/v1/nodes", `{"driver": "fake", "conductor_group": "a/b"}`, 400, "conductor_group"},

		// Node reads and lists.
		{"malformed node name", "GET", "/v1/nodes/a%20b", ``, 400, "logical name or UUID"},
		{"unknown node", "GET", "/v1/nodes/ghost", ``, 404, "Node ghost could not be found"},
		{"bad marker", "GET", "/v1/nodes?marker=xyz", ``, 400, "UUID"},
		{"unknown marker", "GET", "/v1/nodes?marker=" + unknown, ``, 400, "Marker"},
		{"zero limit", "GET", "/v1/nodes?limit=0", ``, 400, "Limit"},
		{"JSON sort key", "GET", "/v1/nodes?sort_key=properties", ``, 400, "sort_key"},
		{"unknown sort key", "GET", "/v1/nodes?sort_key=colour", ``, 400, "sort_key"},
		{"unknown field", "GET", "/v1/nodes/" + node + "?fields=uuid,colour", ``, 400, "colour"},
		{"empty fields", "GET", "/v1/nodes?fields=", ``, 400, "names no field"},
		{"detail and fields", "GET", "/v1/nodes?detail=true&fields=uuid", ``, 400, "detail"},
		{"detail on detail", "GET", "/v1/nodes/detail?detail=true", ``, 400, "detail"},
		{"unknown provision state", "GET", "/v1/nodes?provision_state=flying", ``, 400, "provision_state"},
		{"bad instance_uuid filter", "GET", "/v1/nodes?instance_uuid=xyz", ``, 400, "UUID"},
		{"bad boolean", "GET", "/v1/nodes?associated=perhaps", ``, 400, "boolean"},
		{"validate takes no query", "GET", nodePath + "/validate?x=1", ``, 400, "takes none"},

		// Node patch.
		{"patch not a list", "PATCH", nodePath, `{"op": "add"}`, 400, "expected a list"},
		{"patch op with unknown member", "PATCH", nodePath, `[{"op": "add", "path": "/extra/a", "value": 1, "why": 2}]`, 400, `Unknown attribute "why"`},
		{"patch move", "PATCH", nodePath, `[{"op": "move", "from": "/extra", "path": "/properties"}]`, 400, "not supported"},
		{"patch bad path", "PATCH", nodePath, `[{"op": "add", "path": "extra", "value": 1}]`, 400, "invalid path"},
		{"patch unknown root", "PATCH", nodePath, `[{"op": "replace", "path": "/power_state", "value": "power on"}]`, 400, "Cannot patch"},
		{"patch remove driver", "PATCH", nodePath, `[{"op": "remove", "path": "/driver"}]`, 400, "mandatory"},
		{"patch wrong type", "PATCH", nodePath, `[{"op": "replace", "path": "/extra", "value": [1]}]`, 400, "JSON object"},
		{"patch missing target", "PATCH", nodePath, `[{"op": "remove", "path": "/driver_info/nope"}]`, 400, "does not exist"},
		{"patch duplicate name", "PATCH", nodePath, `[{"op": "replace", "path": "/name", "value": "n2"}]`, 409, "already exists"},
		{"patch in flight", "PATCH", "/v1/nodes/" + busy, `[{"op": "add", "path": "/extra/a", "value": 1}]`, 409, "in progress"},
		{"patch in flight, in maintenance", "PATCH", "/v1/nodes/" + busyInMaintenance, `[{"op": "add", "path": "/driver_info/a", "value": 1}]`, 409, "in progress"},
		{"patch locked", "PATCH", "/v1/nodes/" + locked, `[{"op": "add", "path": "/extra/a", "value": 1}]`, 409, "conductor-9"},
		{"patch unknown node", "PATCH", "/v1/nodes/" + unknown, `[{"op": "add", "path": "/extra/a", "value": 1}]`, 404, "could not be found"},

		// Node delete and maintenance.
		{"delete in flight", "DELETE", "/v1/nodes/" + busy, ``, 409, "provision state"},
		{"delete locked", "DELETE", "/v1/nodes/" + locked, ``, 409, "conductor-9"},
		{"maintenance bad body", "PUT", nodePath + "/maintenance", `{"reason": 5}`, 400, "reason"},
		{"maintenance unknown member", "PUT", nodePath + "/maintenance", `{"why": "x"}`, 400, "Unknown attribute"},
		{"maintenance locked", "PUT", "/v1/nodes/" + locked + "/maintenance", `{"reason": "x"}`, 409, "conductor-9"},

		// Ports.
		{"port not a MAC", "POST", "/v1/ports", `{"node_uuid": "n1", "address": "zz:zz"}`, 400, "MAC address"},
		{"port duplicate MAC", "POST", "/v1/ports", `{"node_uuid": "n1", "address": "52-54-00-00-00-01"}`, 409, "already exists"},
		{"port unknown node", "POST", "/v1/ports", `{"node_uuid": "` + unknown + `", "address": "52:54:00:00:00:03"}`, 400, "could not be found"},
		{"port node with NUL", "POST", "/v1/ports", `{"node_uuid": "a\u0000", "address": "52:54:00:00:00:03"}`, 400, "could not be found"},
		{"port on a locked node", "POST", "/v1/ports", `{"node_uuid": "locked", "address": "52:54:00:00:00:03"}`, 409, "conductor-9"},
		{"port portgroup", "POST", "/v1/ports", `{"node_uuid": "n1", "address": "52:54:00:00:00:03", "portgroup_uuid": "` + unknown + `"}`, 400, "Port groups"},
		{"port bad id", "GET", "/v1/ports/xyz", ``, 400, "UUID"},
		{"port unknown", "GET", "/v1/ports/" + unknown, ``, 404, "could not be found"},
		{"port bad marker", "GET", "/v1/ports?marker=xyz", ``, 400, "UUID"},
		{"port bad sort key", "GET", "/v1/ports?sort_key=extra", ``, 400, "sort_key"},
		{"port bad address filter", "GET", "/v1/ports?address=xyz", ``, 400, "MAC address"},
		{"port filter unknown node", "GET", "/v1/ports?node=ghost", ``, 404, "could not be found"},
		{"ports of an unknown node", "GET", "/v1/nodes/ghost/ports", ``, 404, "could not be found"},
		{"port patch duplicate MAC", "PATCH", portPath, `[{"op": "replace", "path": "/address", "value": "52:54:00:00:00:02"}]`, 409, "already exists"},
		{"port patch bad MAC", "PATCH", portPath, `[{"op": "replace", "path": "/address", "value": "nope"}]`, 400, "MAC address"},
		{"port patch remove address", "PATCH", portPath, `[{"op": "remove", "path": "/address"}]`, 400, "mandatory"},
		{"port patch unknown node", "PATCH", portPath, `[{"op": "replace", "path": "/node_uuid", "value": "ghost"}]`, 400, "could not be found"},
		{"port patch to a locked node", "PATCH", portPath, `[{"op": "replace", "path": "/node_uuid", "value": "locked"}]`, 409, "conductor-9"},
		{"port patch unknown root", "PATCH", portPath, `[{"op": "add", "path": "/name", "value": "x"}]`, 400, "Adding a new attribute"},
		{"port delete unknown", "DELETE", "/v1/ports/" + unknown, ``, 404, "could not be found"},

		// Chassis.
		{"chassis unknown field", "POST", "/v1/chassis", `{"name": "c"}`, 400, `Unknown attribute "name"`},
		{"chassis long description", "POST", "/v1/chassis", `{"description": "` + strings.Repeat("d", 256) + `"}`, 400, "at most 255"},
		{"chassis bad id", "GET", "/v1/chassis/c1", ``, 400, "UUID"},
		{"chassis unknown", "GET", "/v1/chassis/" + unknown, ``, 404, "Chassis"},
		{"chassis nodes of unknown", "GET", "/v1/chassis/" + unknown + "/nodes", ``, 404, "Chassis"},
		{"chassis patch uuid", "PATCH", chassisPath, `[{"op": "replace", "path": "/uuid", "value": "` + unknown + `"}]`, 400, "Cannot patch"},
		{"chassis delete with nodes", "DELETE", chassisPath, ``, 400, "contains nodes"},

		// Drivers and conductors.
		{"unknown driver", "GET", "/v1/drivers/nope", ``, 404, "Driver nope"},
		{"unknown driver properties", "GET", "/v1/drivers/nope/properties", ``, 404, "Driver nope"},
		{"bad driver type", "GET", "/v1/drivers?type=weird", ``, 400, "type"},
		{"unknown conductor", "GET", "/v1/conductors/nope", ``, 404, "Conductor nope"},
		{"unknown conductor marker", "GET", "/v1/conductors?marker=nope", ``, 400, "Marker"},
		{"conductor sort key", "GET", "/v1/conductors?sort_key=drivers", ``, 400, "sort_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body, latest(t)...)
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
}
