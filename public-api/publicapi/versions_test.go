package publicapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/shared/token"
)

// TestVersionedBehaviour checks the per-version behaviours Ferric honours:
// features newer than the request's version are 406 (404 for endpoints),
// and documents hide newer fields and rename states as Ironic did then.
func TestVersionedBehaviour(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	uuid := s.createNode(t, `{"driver": "fake", "name": "vnode", "owner": "team-a"}`)
	if _, err := s.DB.Exec(`UPDATE nodes SET provision_state = 'available' WHERE uuid = $1`, uuid); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, version, method, path, body string
		status                            int
		msg                               string
	}{
		{"fields before 1.8", "1.7", "GET", "/v1/nodes/" + uuid + "?fields=uuid", "", 406, "1.8"},
		{"fields at 1.8", "1.8", "GET", "/v1/nodes/" + uuid + "?fields=uuid", "", 200, ""},
		{"field newer than the version", "1.49", "GET", "/v1/nodes?fields=owner", "", 406, "1.50"},
		{"detail before 1.43", "1.42", "GET", "/v1/nodes?detail=true", "", 406, "1.43"},
		{"detail at 1.43", "1.43", "GET", "/v1/nodes?detail=true", "", 200, ""},
		{"name before 1.5", "1.4", "GET", "/v1/nodes/vnode", "", 404, "could not be found"},
		{"name at 1.5", "1.5", "GET", "/v1/nodes/vnode", "", 200, ""},
		{"create with a name before 1.5", "1.4", "POST", "/v1/nodes", `{"driver": "fake", "name": "x"}`, 406, "1.5"},
		{"create with an owner before 1.50", "1.49", "POST", "/v1/nodes", `{"driver": "fake", "owner": "x"}`, 406, "1.50"},
		{"provision_state filter before 1.9", "1.8", "GET", "/v1/nodes?provision_state=available", "", 406, "1.9"},
		{"driver filter before 1.16", "1.15", "GET", "/v1/nodes?driver=fake", "", 406, "1.16"},
		{"owner filter before 1.50", "1.49", "GET", "/v1/nodes?owner=team-a", "", 406, "1.50"},
		{"sort by owner before 1.50", "1.49", "GET", "/v1/nodes?sort_key=owner", "", 406, "1.50"},
		{"patch lessee before 1.65", "1.64", "PATCH", "/v1/nodes/" + uuid, `[{"op": "add", "path": "/lessee", "value": "x"}]`, 406, "1.65"},
		{"unset chassis before 1.25", "1.24", "PATCH", "/v1/nodes/" + uuid, `[{"op": "remove", "path": "/chassis_uuid"}]`, 406, "1.25"},
		{"conductors before 1.49", "1.48", "GET", "/v1/conductors", "", 404, "1.49"},
		{"conductors at 1.49", "1.49", "GET", "/v1/conductors", "", 200, ""},
		{"driver fields before 1.77", "1.76", "GET", "/v1/drivers?fields=name", "", 406, "1.77"},
		{"driver type filter before 1.30", "1.29", "GET", "/v1/drivers?type=dynamic", "", 406, "1.30"},
		{"port physical_network before 1.34", "1.33", "POST", "/v1/ports", `{"node_uuid": "` + uuid + `", "address": "52:54:00:00:00:01", "physical_network": "p"}`, 406, "1.34"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body, as(t, "admin", tc.version)...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := r.header.Get("X-OpenStack-Ironic-API-Version"); got != tc.version {
				t.Errorf("effective version header %q, want %q", got, tc.version)
			}
			if tc.msg != "" && !strings.Contains(faultString(t, r.body), tc.msg) {
				t.Errorf("message %q does not mention %q", faultString(t, r.body), tc.msg)
			}
		})
	}
	if n := countRows(t, s.DB, "nodes"); n != 1 {
		t.Errorf("%d nodes after refused creates, want 1", n)
	}

	old := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+uuid, "", as(t, "reader", "")...), 200))
	if v, ok := old["provision_state"]; !ok || v != nil {
		t.Errorf("at 1.1 available is a null provision_state, got %v", v)
	}
	for _, hidden := range []string{"name", "driver_internal_info", "owner", "resource_class", "fault", "conductor_group", "boot_mode"} {
		if _, ok := old[hidden]; ok {
			t.Errorf("field %s shown at 1.1", hidden)
		}
	}
	cur := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+uuid, "", latest(t)...), 200))
	for _, shown := range []string{"name", "driver_internal_info", "owner", "lessee", "boot_mode", "chassis_uuid", "conductor"} {
		if _, ok := cur[shown]; !ok {
			t.Errorf("field %s missing at the latest version", shown)
		}
	}
	if cur["provision_state"] != "available" || cur["owner"] != "team-a" {
		t.Errorf("latest: provision_state %v owner %v", cur["provision_state"], cur["owner"])
	}

	if _, err := s.DB.Exec(`UPDATE nodes SET provision_state = 'inspect wait', target_provision_state = 'manageable' WHERE uuid = $1`, uuid); err != nil {
		t.Fatal(err)
	}
	states := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+uuid+"/states", "", as(t, "reader", "1.38")...), 200))
	if states["provision_state"] != "inspecting" {
		t.Errorf("at 1.38 inspect wait is shown as inspecting, got %v", states["provision_state"])
	}
	states = jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+uuid+"/states", "", latest(t)...), 200))
	if states["provision_state"] != "inspect wait" || states["target_provision_state"] != "manageable" {
		t.Errorf("latest states = %v", states)
	}
	if _, ok := states["boot_mode"]; !ok || len(states) != 11 {
		t.Errorf("states document = %v, want Ironic's 11 members", states)
	}
}

// TestVersionHeadersOnEveryResponse: errors raised before any handler
// (unknown path, wrong verb, no credentials, malformed URL) carry the
// version headers too.
func TestVersionHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, tc := range []struct {
		method, path string
		headers      []string
		status       int
	}{
		{"GET", "/v1/teapots", nil, 404},
		{"PUT", "/v1/nodes", nil, 405},
		{"GET", "/v1/nodes", nil, 401},
		{"GET", "/v1/nodes?x=%zz", nil, 400},
		{"GET", "/v1/nodes", as(t, "reader", "1.33"), 200},
	} {
		r := s.do(t, tc.method, tc.path, "", tc.headers...)
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, r.status, tc.status)
		}
		for _, h := range []string{"X-OpenStack-Ironic-API-Minimum-Version", "X-OpenStack-Ironic-API-Maximum-Version", "X-OpenStack-Ironic-API-Version"} {
			if r.header.Get(h) == "" {
				t.Errorf("%s %s (%d) lacks %s", tc.method, tc.path, r.status, h)
			}
		}
	}
}

// TestTrailingSlashServedInPlace: a path ending in "/" is served as the
// path without it, with the version headers, not redirected.
func TestTrailingSlashServedInPlace(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/nodes/", 200},
		{"GET", "/v1/", 200},
		{"POST", "/v1/nodes/", 400}, // served: the empty body is the fault
	} {
		req, _ := http.NewRequest(tc.method, s.URL+tc.path, nil)
		for h, v := range map[string]string{"X-Auth-Token": mintToken(t, testKeys, "admin", token.AudiencePublic, time.Hour), "X-OpenStack-Ironic-API-Version": "1.81"} {
			req.Header.Set(h, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-OpenStack-Ironic-API-Version") != "1.81" {
			t.Errorf("%s %s: %d, version %q; want %d served in place", tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-OpenStack-Ironic-API-Version"), tc.status)
		}
	}
}
