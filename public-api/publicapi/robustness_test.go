package publicapi_test

import (
	"strings"
	"testing"
)

// TestNoInputIsAServerError throws odd identifiers, bodies and query
// strings at every route: nothing a client sends may produce a 5xx, and
// every refusal must be in Ironic's error format.
func TestNoInputIsAServerError(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	node := s.createNode(t, `{"driver": "fake", "name": "target"}`)
	idents := []string{
		"target", node, strings.ToUpper(node), "1be26c0b03f24d2eae87c02d7f33c123", "null", "-", "~",
		strings.Repeat("n", 300), "%E2%98%83", "a.b", "..", "%25", "1be26c0b-03f2-4d2e-ae87-c02d7f33c12",
	}
	bodies := []string{
		``, `null`, `[]`, `{}`, `"x"`, `1e999`, `-1`, `{"driver": null}`, `{"driver": 5}`,
		`{"driver": "fake", "extra": {"a": 1e308}}`, `{"address": "52:54:00:00:00:10", "node_uuid": "target"}`,
		`[{"op": "add", "path": "/extra/x", "value": 1e400}]`, `[{"op": null, "path": null}]`,
		`[{"op": "add", "path": "/extra/` + strings.Repeat("a/", 200) + `x", "value": 1}]`,
		`[{"op": "remove", "path": "/extra/a~1b~0c"}]`, `[` + strings.Repeat(`{"op": "add", "path": "/extra/k", "value": 1},`, 500) + `{"op": "add", "path": "/extra/k", "value": 1}]`,
		strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000), `{"reason": "` + strings.Repeat("r", 5000) + `"}`,
		`{"description": "\ud800"}`, `{"extra": {"\u0000": 1}}`,
		`{"target": "soft power off", "timeout": 1e30}`, `{"target": "power on", "timeout": -5}`,
		`{"target": "clean", "clean_steps": [{"interface": null}]}`, `{"target": "active", "configdrive": {"meta_data": 5}}`,
		`{"boot_device": "pxe", "persistent": "yes"}`, `{"target": "` + strings.Repeat("t", 5000) + `"}`,
	}
	queries := []string{
		"", "?limit=99999999999999999999", "?limit=1&marker=" + node, "?sort_key=name&sort_dir=desc",
		"?fields=uuid,uuid", "?detail=1", "?node=" + node, "?address=52:54:00:00:00:10", "?marker=%00",
		"?provision_state=" + strings.Repeat("x", 5000), "?conductor_group=%E2%98%83", "?driver=fake&driver=ipmi",
		"?method=echo", "?method=" + strings.Repeat("m", 3000),
	}
	routes := []struct{ method, path string }{
		{"GET", "/v1/nodes{q}"}, {"POST", "/v1/nodes"}, {"GET", "/v1/nodes/{id}{q}"}, {"PATCH", "/v1/nodes/{id}"},
		{"GET", "/v1/nodes/{id}/states"}, {"GET", "/v1/nodes/{id}/validate"}, {"PUT", "/v1/nodes/{id}/maintenance"},
		{"GET", "/v1/nodes/{id}/ports{q}"}, {"GET", "/v1/ports{q}"}, {"POST", "/v1/ports"}, {"GET", "/v1/ports/{id}"},
		{"PATCH", "/v1/ports/{id}"}, {"GET", "/v1/chassis{q}"}, {"POST", "/v1/chassis"}, {"GET", "/v1/chassis/{id}/nodes{q}"},
		{"PATCH", "/v1/chassis/{id}"}, {"GET", "/v1/drivers/{id}"}, {"GET", "/v1/drivers/{id}/properties"},
		{"GET", "/v1/conductors{q}"}, {"GET", "/v1/conductors/{id}"}, {"DELETE", "/v1/ports/{id}"},
		{"DELETE", "/v1/chassis/{id}"}, {"DELETE", "/v1/nodes/{id}/maintenance"},
		{"PUT", "/v1/nodes/{id}/states/power"}, {"PUT", "/v1/nodes/{id}/states/provision"},
		{"GET", "/v1/nodes/{id}/management/boot_device"}, {"PUT", "/v1/nodes/{id}/management/boot_device"},
		{"GET", "/v1/nodes/{id}/management/boot_device/supported"}, {"GET", "/v1/nodes/{id}/vendor_passthru/methods"},
		{"POST", "/v1/nodes/{id}/vendor_passthru{q}"}, {"POST", "/v1/nodes/{id}/vendor_passthru/echo"},
		{"POST", "/v1/drivers/{id}/vendor_passthru{q}"}, {"POST", "/v1/drivers/{id}/vendor_passthru/echo"},
		{"DELETE", "/v1/nodes/{id}"}, // last: it may delete the node the others act on
	}
	h := latest(t)
	sent := 0
	for _, rt := range routes {
		for i, id := range idents {
			q := queries[i%len(queries)]
			path := strings.NewReplacer("{id}", id, "{q}", q).Replace(rt.path)
			var bodyList []string
			if rt.method == "GET" || rt.method == "DELETE" {
				bodyList = []string{""}
			} else {
				bodyList = bodies
			}
			for _, body := range bodyList {
				r := s.do(t, rt.method, path, body, h...)
				sent++
				if r.status >= 500 {
					t.Errorf("%s %s %.60q: status %d: %s", rt.method, path, body, r.status, r.body)
					continue
				}
				if r.status >= 400 {
					faultString(t, r.body)
				}
			}
		}
	}
	for _, q := range queries {
		if r := s.do(t, "GET", "/v1/nodes"+q, "", h...); r.status >= 500 {
			t.Errorf("GET /v1/nodes%s: %d", q, r.status)
		}
	}
	t.Logf("%d requests, no server error", sent)
}
