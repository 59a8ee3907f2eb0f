package publicapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/token"
)

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; headers alternate name, value.
func (s *server) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

// faultString decodes Ironic's double-encoded error body.
func faultString(t *testing.T, body []byte) string {
	t.Helper()
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	if err := json.Unmarshal(body, &outer); err != nil || outer.ErrorMessage == "" {
		t.Fatalf("error body not in Ironic's format: %s", body)
	}
	var inner struct {
		FaultCode   string `json:"faultcode"`
		FaultString string `json:"faultstring"`
	}
	if err := json.Unmarshal([]byte(outer.ErrorMessage), &inner); err != nil {
		t.Fatalf("error_message is not a JSON document: %q", outer.ErrorMessage)
	}
	return inner.FaultString
}

func TestVersionNegotiation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
		wantVer    string
	}{
		{"no header gets the minimum", nil, 200, "1.1"},
		{"ironic header", []string{"X-OpenStack-Ironic-API-Version", "1.50"}, 200, "1.50"},
		{"generic header", []string{"OpenStack-API-Version", "baremetal 1.40"}, 200, "1.40"},
		{"latest", []string{"X-OpenStack-Ironic-API-Version", "latest"}, 200, publicapi.MaxVersion.String()},
		{"newer than max (CLI's first try)", []string{"X-OpenStack-Ironic-API-Version", "1.115"}, 406, "1.1"},
		{"older than min", []string{"X-OpenStack-Ironic-API-Version", "1.0"}, 406, "1.1"},
		{"wrong major", []string{"X-OpenStack-Ironic-API-Version", "2.1"}, 406, "1.1"},
		{"garbage", []string{"X-OpenStack-Ironic-API-Version", "one.two"}, 406, "1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "GET", "/v1", "", tc.headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if got := r.header.Get("X-OpenStack-Ironic-API-Minimum-Version"); got != publicapi.MinVersion.String() {
				t.Errorf("minimum header %q", got)
			}
			if got := r.header.Get("X-OpenStack-Ironic-API-Maximum-Version"); got != publicapi.MaxVersion.String() {
				t.Errorf("maximum header %q", got)
			}
			if got := r.header.Get("X-OpenStack-Ironic-API-Version"); got != tc.wantVer {
				t.Errorf("version header %q, want %q", got, tc.wantVer)
			}
			if tc.wantStatus == 406 && faultString(t, r.body) == "" {
				t.Error("406 without a message")
			}
			// The root document is unversioned, as Ironic's: any header is 200.
			if root := s.do(t, "GET", "/", "", tc.headers...); root.status != 200 ||
				root.header.Get("X-OpenStack-Ironic-API-Maximum-Version") != publicapi.MaxVersion.String() {
				t.Errorf("GET / with these headers: %d, max header %q; want 200 with the headers",
					root.status, root.header.Get("X-OpenStack-Ironic-API-Maximum-Version"))
			}
		})
	}
}

func TestRootDocuments(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	r := s.do(t, "GET", "/", "")
	var root struct {
		DefaultVersion struct {
			Version    string `json:"version"`
			MinVersion string `json:"min_version"`
		} `json:"default_version"`
	}
	if err := json.Unmarshal(r.body, &root); err != nil || r.status != 200 {
		t.Fatalf("GET / = %d %s", r.status, r.body)
	}
	if root.DefaultVersion.Version != publicapi.MaxVersion.String() || root.DefaultVersion.MinVersion != "1.1" {
		t.Errorf("default_version = %+v", root.DefaultVersion)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := s.do(t, "GET", path, ""); r.status != 200 {
			t.Errorf("%s = %d", path, r.status)
		}
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	admin := mintToken(t, testKeys, "admin", token.AudiencePublic, time.Hour)
	tests := []struct {
		name    string
		headers []string
		want    int
	}{
		{"no token", nil, 401},
		{"bearer", []string{"Authorization", "Bearer " + admin}, 200},
		{"x-auth-token", []string{"X-Auth-Token", admin}, 200},
		{"basic scheme", []string{"Authorization", "Basic YWRtaW46YWRtaW4="}, 401},
		{"expired", []string{"X-Auth-Token", mintToken(t, testKeys, "admin", token.AudiencePublic, -time.Hour)}, 401},
		{"agent audience", []string{"X-Auth-Token", mintToken(t, testKeys, "admin", token.AudienceAgent, time.Hour)}, 401},
		{"agent key", []string{"X-Auth-Token", mintToken(t, agentKeys, "admin", token.AudiencePublic, time.Hour)}, 401},
		{"unknown role", []string{"X-Auth-Token", mintToken(t, testKeys, "root", token.AudiencePublic, time.Hour)}, 401},
		{"alg none", []string{"X-Auth-Token", "eyJhbGciOiJub25lIiwia2lkIjoib3AxIn0.eyJpc3MiOiJmZXJyaWMtdGVzdCIsImF1ZCI6WyJwdWJsaWMiXSwiZXhwIjo0MTAyNDQ0ODAwLCJyb2xlIjoiYWRtaW4ifQ."}, 401},
		{"garbage", []string{"X-Auth-Token", "not-a-jwt"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "GET", "/v1/nodes", "", tc.headers...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want == 401 {
				if msg := faultString(t, r.body); !strings.Contains(msg, "Authentication required") {
					t.Errorf("message %q", msg)
				}
			}
		})
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	body := `{"driver": "fake"}`
	for _, tc := range []struct {
		role       string
		readWant   int
		createWant int
	}{
		{"reader", 200, 403},
		{"member", 200, 403},
		{"admin", 200, 201},
	} {
		tok := mintToken(t, testKeys, tc.role, token.AudiencePublic, time.Hour)
		if r := s.do(t, "GET", "/v1/nodes", "", "X-Auth-Token", tok); r.status != tc.readWant {
			t.Errorf("%s list: %d, want %d", tc.role, r.status, tc.readWant)
		}
		if r := s.do(t, "POST", "/v1/nodes", body, "X-Auth-Token", tok); r.status != tc.createWant {
			t.Errorf("%s create: %d, want %d: %s", tc.role, r.status, tc.createWant, r.body)
		}
	}
	if n := countRows(t, s.DB, "nodes"); n != 1 {
		t.Errorf("%d nodes, want only the admin's", n)
	}
}

// TestBadInput sends malformed and rule-breaking requests: each must get a
// precise 4xx in Ironic's format and write nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tok := mintToken(t, testKeys, "admin", token.AudiencePublic, time.Hour)
	auth := []string{"X-Auth-Token", tok, "X-OpenStack-Ironic-API-Version", "1.81"}
	if r := s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "name": "taken"}`, auth...); r.status != 201 {
		t.Fatalf("seed node: %d %s", r.status, r.body)
	}
	seed := s.do(t, "GET", "/v1/nodes/taken", "", auth...)
	var node struct{ UUID string }
	_ = json.Unmarshal(seed.body, &node)
	if r := s.do(t, "POST", "/v1/ports", `{"node_uuid": "`+node.UUID+`", "address": "52:54:00:00:00:01"}`, auth...); r.status != 201 {
		t.Fatalf("seed port: %d %s", r.status, r.body)
	}

	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"malformed JSON", "POST", "/v1/nodes", `{"driver": "fake"`, 400, "truncated"},
		{"syntax error", "POST", "/v1/nodes", `{"driver": fake}`, 400, "syntax error"},
		{"empty body", "POST", "/v1/nodes", ``, 400, "empty"},
		{"trailing data", "POST", "/v1/nodes", `{"driver": "fake"} {}`, 400, "after the JSON document"},
		{"unknown field", "POST", "/v1/nodes", `{"driver": "fake", "colour": "red"}`, 400, `Unknown attribute "colour"`},
		{"wrong type", "POST", "/v1/nodes", `{"driver": "fake", "driver_info": "x"}`, 400, "driver_info"},
		{"missing driver", "POST", "/v1/nodes", `{"name": "x"}`, 400, "driver"},
		{"unknown driver", "POST", "/v1/nodes", `{"driver": "nope"}`, 400, "supports driver nope"},
		{"duplicate name", "POST", "/v1/nodes", `{"driver": "fake", "name": "taken"}`, 409, "already exists"},
		{"uuid-shaped name", "POST", "/v1/nodes", `{"driver": "fake", "name": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"}`, 400, "UUID"},
		{"bad name", "POST", "/v1/nodes", `{"driver": "fake", "name": "a b"}`, 400, "logical name"},
		{"bad uuid", "POST", "/v1/nodes", `{"driver": "fake", "uuid": "xyz"}`, 400, "UUID"},
		{"not a MAC", "POST", "/v1/ports", `{"node_uuid": "` + node.UUID + `", "address": "zz:zz"}`, 400, "MAC address"},
		{"duplicate MAC", "POST", "/v1/ports", `{"node_uuid": "` + node.UUID + `", "address": "52:54:00:00:00:01"}`, 409, "already exists"},
		{"port on unknown node", "POST", "/v1/ports", `{"node_uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "address": "52:54:00:00:00:02"}`, 400, "could not be found"},
		{"unknown node", "GET", "/v1/nodes/nope", ``, 404, "Node nope could not be found"},
		{"bad limit", "GET", "/v1/nodes?limit=-1", ``, 400, "Limit"},
		{"bad sort key", "GET", "/v1/nodes?sort_key=driver_info", ``, 400, "sort_key"},
		{"bad sort dir", "GET", "/v1/nodes?sort_dir=up", ``, 400, "sort direction"},
		{"bad field", "GET", "/v1/nodes?fields=uuid,bogus", ``, 400, "bogus"},
		{"detail and fields", "GET", "/v1/nodes?detail=true&fields=uuid", ``, 400, "detail"},
		{"unknown marker", "GET", "/v1/nodes?marker=1be26c0b-03f2-4d2e-ae87-c02d7f33c123", ``, 400, "Marker"},
		{"bad boolean", "GET", "/v1/nodes?maintenance=perhaps", ``, 400, "boolean"},
		{"unknown path", "GET", "/v1/teapots", ``, 404, "could not be found"},
		{"wrong verb", "PUT", "/v1/nodes", `{}`, 405, "not allowed"},
		{"oversized body", "POST", "/v1/nodes", `{"driver": "fake", "extra": {"x": "` + strings.Repeat("a", 2<<20) + `"}}`, 413, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body, auth...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if msg := faultString(t, r.body); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not mention %q", msg, tc.msg)
			}
		})
	}
	if n := countRows(t, s.DB, "nodes"); n != 1 {
		t.Errorf("%d nodes after bad requests, want 1", n)
	}
	if n := countRows(t, s.DB, "ports"); n != 1 {
		t.Errorf("%d ports after bad requests, want 1", n)
	}
}

func TestOldVersionsCreateAvailableNodes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tok := mintToken(t, testKeys, "admin", token.AudiencePublic, time.Hour)
	r := s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "name": "old"}`, "X-Auth-Token", tok, "X-OpenStack-Ironic-API-Version", "1.10")
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var n struct {
		ProvisionState string `json:"provision_state"`
	}
	_ = json.Unmarshal(r.body, &n)
	if n.ProvisionState != "available" {
		t.Errorf("provision_state %q at 1.10, want available", n.ProvisionState)
	}
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, s.URL+"/v1/nodes/") {
		t.Errorf("Location %q", loc)
	}
}
