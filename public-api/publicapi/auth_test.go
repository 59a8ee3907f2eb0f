package publicapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/syncbuf"
)

// TestEveryRoleOnEveryEndpoint: readers read, admins also enroll, edit and
// delete; a member is a reader here (its extra rights are power,
// provisioning and passthru). Each mutating call gets fresh resources.
func TestEveryRoleOnEveryEndpoint(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	n := 0
	fresh := func(t *testing.T) (node, port, chassis string) {
		n++
		node = s.createNode(t, fmt.Sprintf(`{"driver": "fake", "name": "r%d"}`, n))
		r := must(t, s.do(t, "POST", "/v1/ports", fmt.Sprintf(`{"node_uuid": "%s", "address": "52:54:00:00:%02x:01"}`, node, n), latest(t)...), 201)
		port = jsonOf(t, r)["uuid"].(string)
		chassis = jsonOf(t, must(t, s.do(t, "POST", "/v1/chassis", `{}`, latest(t)...), 201))["uuid"].(string)
		return node, port, chassis
	}
	patch := `[{"op": "add", "path": "/extra/x", "value": 1}]`
	tests := []struct {
		method, path, body string
		admin              bool // admin only; otherwise any role
		ok                 int
	}{
		{"GET", "/v1/nodes", "", false, 200},
		{"GET", "/v1/nodes/detail", "", false, 200},
		{"GET", "/v1/nodes/{node}", "", false, 200},
		{"GET", "/v1/nodes/{node}/states", "", false, 200},
		{"GET", "/v1/nodes/{node}/validate", "", false, 200},
		{"GET", "/v1/nodes/{node}/ports", "", false, 200},
		{"GET", "/v1/nodes/{node}/ports/detail", "", false, 200},
		{"GET", "/v1/ports", "", false, 200},
		{"GET", "/v1/ports/detail", "", false, 200},
		{"GET", "/v1/ports/{port}", "", false, 200},
		{"GET", "/v1/chassis", "", false, 200},
		{"GET", "/v1/chassis/detail", "", false, 200},
		{"GET", "/v1/chassis/{chassis}", "", false, 200},
		{"GET", "/v1/chassis/{chassis}/nodes", "", false, 200},
		{"GET", "/v1/chassis/{chassis}/nodes/detail", "", false, 200},
		{"GET", "/v1/drivers", "", false, 200},
		{"GET", "/v1/drivers/fake", "", false, 200},
		{"GET", "/v1/drivers/fake/properties", "", false, 200},
		{"GET", "/v1/conductors", "", false, 200},
		{"POST", "/v1/nodes", `{"driver": "fake"}`, true, 201},
		{"PATCH", "/v1/nodes/{node}", patch, true, 200},
		{"DELETE", "/v1/nodes/{node}", "", true, 204},
		{"PUT", "/v1/nodes/{node}/maintenance", `{"reason": "x"}`, true, 202},
		{"DELETE", "/v1/nodes/{node}/maintenance", "", true, 202},
		{"POST", "/v1/ports", `{"node_uuid": "{node}", "address": "52:54:00:ff:ff:{n}"}`, true, 201},
		{"PATCH", "/v1/ports/{port}", patch, true, 200},
		{"DELETE", "/v1/ports/{port}", "", true, 204},
		{"POST", "/v1/chassis", `{}`, true, 201},
		{"PATCH", "/v1/chassis/{chassis}", patch, true, 200},
		{"DELETE", "/v1/chassis/{chassis}", "", true, 204},
	}
	for _, tc := range tests {
		for _, role := range []string{"reader", "member", "admin"} {
			t.Run(tc.method+" "+tc.path+" as "+role, func(t *testing.T) {
				node, port, chassis := fresh(t)
				expand := strings.NewReplacer("{node}", node, "{port}", port, "{chassis}", chassis, "{n}", fmt.Sprintf("%02x", n))
				before := snapshot(t, s.DB)
				r := s.do(t, tc.method, expand.Replace(tc.path), expand.Replace(tc.body), as(t, role, publicapi.MaxVersion.String())...)
				want := tc.ok
				if tc.admin && role != "admin" {
					want = 403
				}
				if r.status != want {
					t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
				}
				if want == 403 && snapshot(t, s.DB) != before {
					t.Error("a refused request changed the database")
				}
			})
		}
	}
}

// htpasswd writes an htpasswd file body for user:password pairs.
func htpasswd(t *testing.T, pairs ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# operators\n")
	for i := 0; i+1 < len(pairs); i += 2 {
		hash, err := bcrypt.GenerateFromPassword([]byte(pairs[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", pairs[i], hash)
	}
	return b.String()
}

func basicServer(t *testing.T, file, roles string, opts ...publicapi.Option) (*server, *publicapi.BasicAuth) {
	t.Helper()
	auth, err := publicapi.NewBasicAuth(strings.NewReader(file), "htpasswd", roles)
	if err != nil {
		t.Fatal(err)
	}
	return newCustomServer(t, auth, conductor.Options{}, opts...), auth
}

func basic(user, password string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)),
		"X-OpenStack-Ironic-API-Version", "1.81"}
}

func TestHTTPBasicAuth(t *testing.T) {
	t.Parallel()
	file := htpasswd(t, "alice", "alice-pw", "bob", "bob-pw", "carol", "carol-pw")
	s, _ := basicServer(t, file, "alice=admin, bob=member, *=reader")
	tests := []struct {
		name, user, password, method, path, body string
		want                                     int
	}{
		{"admin creates", "alice", "alice-pw", "POST", "/v1/nodes", `{"driver": "fake"}`, 201},
		{"admin again (cached check)", "alice", "alice-pw", "GET", "/v1/nodes", ``, 200},
		{"member reads", "bob", "bob-pw", "GET", "/v1/nodes", ``, 200},
		{"member cannot create", "bob", "bob-pw", "POST", "/v1/nodes", `{"driver": "fake"}`, 403},
		{"default role reads", "carol", "carol-pw", "GET", "/v1/nodes", ``, 200},
		{"default role cannot create", "carol", "carol-pw", "POST", "/v1/nodes", `{"driver": "fake"}`, 403},
		{"wrong password", "alice", "bob-pw", "GET", "/v1/nodes", ``, 401},
		{"wrong password after a right one", "alice", "alice-pw-", "POST", "/v1/nodes", `{"driver": "fake"}`, 401},
		{"unknown user", "mallory", "x", "GET", "/v1/nodes", ``, 401},
		{"empty password", "alice", "", "GET", "/v1/nodes", ``, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body, basic(tc.user, tc.password)...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="ferric"` {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	if r := s.do(t, "GET", "/v1/nodes", "", "Authorization", "Bearer x"); r.status != 401 {
		t.Errorf("a bearer token under http_basic: %d, want 401", r.status)
	}
	if n := countRows(t, s.DB, "nodes"); n != 1 {
		t.Errorf("%d nodes, want only alice's", n)
	}

	// gophercloud's http_basic client, as Metal3 uses it.
	client, err := httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{
		IronicEndpoint: s.URL + "/v1/", IronicUser: "alice", IronicUserPassword: "alice-pw",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Create(context.Background(), client, nodes.CreateOpts{Driver: "fake"}).Extract(); err != nil {
		t.Errorf("gophercloud http_basic create: %v", err)
	}
	client, _ = httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{
		IronicEndpoint: s.URL + "/v1/", IronicUser: "alice", IronicUserPassword: "nope",
	})
	if _, err := nodes.Get(context.Background(), client, "x").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("gophercloud with a wrong password: %v, want 401", err)
	}
}

func TestHTTPBasicAuthWithoutDefaultRole(t *testing.T) {
	t.Parallel()
	s, _ := basicServer(t, htpasswd(t, "alice", "a", "eve", "e"), "alice=reader")
	if r := s.do(t, "GET", "/v1/nodes", "", basic("eve", "e")...); r.status != 403 {
		t.Errorf("a user with no role: %d, want 403 (authenticated, not authorised)", r.status)
	}
	if r := s.do(t, "GET", "/v1/nodes", "", basic("alice", "a")...); r.status != 200 {
		t.Errorf("a reader: %d", r.status)
	}
}

func TestHTTPBasicAuthRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	good := htpasswd(t, "alice", "a")
	for name, tc := range map[string]struct{ file, roles, want string }{
		"not bcrypt":        {"alice:$apr1$abc$def\n", "", "only bcrypt"},
		"plain text":        {"alice:secret\n", "", "only bcrypt"},
		"no colon":          {"alice\n", "", "want user:bcrypt-hash"},
		"duplicate user":    {good + good, "", "appears twice"},
		"empty file":        {"# nobody\n", "", "no users"},
		"unknown role":      {good, "alice=root", "role admin, member or reader"},
		"user not in file":  {good, "bob=admin", "not in"},
		"malformed mapping": {good, "alice", "want user=role"},
		"user named twice":  {good, "alice=admin,alice=reader", "twice"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := publicapi.NewBasicAuth(strings.NewReader(tc.file), "htpasswd", tc.roles)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewBasicAuth = %v, want an error mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "$2") {
				t.Errorf("the error shows a hash: %v", err)
			}
		})
	}
}

// auditBuffer collects the audit log the server's goroutines write.
type auditBuffer struct{ syncbuf.Buffer }

func (s *auditBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// TestAuditLog: one record per mutating request, refused ones included,
// with who, what, which node and the result, and never a body.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	var buf auditBuffer
	s, _ := basicServer(t, htpasswd(t, "alice", "a", "carol", "c"), "alice=admin,*=reader",
		publicapi.WithAuditLog(slog.New(slog.NewJSONHandler(&buf, nil))))
	r := must(t, s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "name": "audited", "driver_info": {"ipmi_password": "TOPSECRET"}}`, basic("alice", "a")...), 201)
	uuid := jsonOf(t, r)["uuid"].(string)
	must(t, s.do(t, "PATCH", "/v1/nodes/audited", `[{"op": "add", "path": "/driver_info/ipmi_password", "value": "NEWSECRET"}]`, basic("alice", "a")...), 200)
	must(t, s.do(t, "GET", "/v1/nodes/audited", "", basic("alice", "a")...), 200)
	must(t, s.do(t, "DELETE", "/v1/nodes/audited", "", basic("carol", "c")...), 403)
	must(t, s.do(t, "DELETE", "/v1/nodes/audited", "", basic("carol", "wrong")...), 401)
	must(t, s.do(t, "PUT", "/v1/nodes/audited/maintenance", `{"reason": "x"}`, basic("alice", "a")...), 202)
	must(t, s.do(t, "GET", "/v1/nodes/audited/vendor_passthru/methods", "", basic("alice", "a")...), 200)
	must(t, s.do(t, "GET", "/v1/nodes/audited/vendor_passthru/echo", "", basic("alice", "a")...), 200)
	must(t, s.do(t, "POST", "/v1/nodes", `{"driver": "fake"}`, "X-OpenStack-Ironic-API-Version", "1.999"), 406)
	must(t, s.do(t, "PUT", "/v1/nodes", `{}`, basic("alice", "a")...), 405)

	recs := buf.records(t)
	want := []struct{ subject, method, route, node, result string }{
		{"alice", "POST", "/v1/nodes", "", "success"},
		{"alice", "PATCH", "/v1/nodes/:node", "audited", "success"},
		{"carol", "DELETE", "/v1/nodes/:node", "audited", "denied"},
		{"anonymous", "DELETE", "/v1/nodes/:node", "audited", "denied"},
		{"alice", "PUT", "/v1/nodes/:node/maintenance", "audited", "success"},
		{"alice", "GET", "/v1/nodes/:node/vendor_passthru/:method", "audited", "success"},
		{"anonymous", "POST", "/v1/nodes", "", "refused"},
		{"anonymous", "PUT", "(unmatched)", "", "refused"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d audit records, want %d (GETs other than passthru calls are not audited): %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		rec := recs[i]
		node, _ := rec["node"].(string)
		if rec["subject"] != w.subject || rec["method"] != w.method || rec["route"] != w.route || node != w.node || rec["result"] != w.result {
			t.Errorf("record %d = %v, want %+v", i, rec, w)
		}
		if rec["request_id"] == "" || rec["status"] == nil || rec["remote"] == "" {
			t.Errorf("record %d lacks request_id, status or remote: %v", i, rec)
		}
	}
	if recs[0]["created"] != uuid || recs[0]["role"] != "admin" {
		t.Errorf("create record = %v, want created %s by an admin", recs[0], uuid)
	}
	text := buf.String()
	for _, secret := range []string{"SECRET", "driver_info", "ipmi_password"} {
		if strings.Contains(text, secret) {
			t.Errorf("the audit log contains %q: %s", secret, text)
		}
	}
}

// TestHTTPBasicAuthReadsTheFileAgain changes the htpasswd file under a
// loaded BasicAuth: a changed password and a new user take effect without
// a restart (the old password, verified before, no longer passes), and a
// broken file is logged and the last good one kept.
func TestHTTPBasicAuthReadsTheFileAgain(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "htpasswd")
	stamp := time.Now()
	write := func(body string) {
		t.Helper()
		stamp = stamp.Add(time.Second) // a new modification time, however fast the test runs
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	write(htpasswd(t, "alice", "old"))
	auth, err := publicapi.LoadBasicAuth(path, "*=reader", slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	accepts := func(user, password string) bool {
		req := httptest.NewRequest("GET", "/v1/nodes", nil)
		req.SetBasicAuth(user, password)
		_, _, ok := auth.Authenticate(req)
		return ok
	}
	if !accepts("alice", "old") || accepts("bob", "b") {
		t.Fatal("the first file is not what is checked")
	}
	write(htpasswd(t, "alice", "new", "bob", "b"))
	time.Sleep(1100 * time.Millisecond) // the file is checked once a second
	if accepts("alice", "old") {
		t.Fatal("the old password still passes after the file changed")
	}
	if !accepts("alice", "new") || !accepts("bob", "b") {
		t.Fatal("the changed file is not what is checked")
	}
	write("alice:not-a-bcrypt-hash\n")
	time.Sleep(1100 * time.Millisecond)
	if !accepts("alice", "new") {
		t.Fatal("a broken file replaced the last good one")
	}
	if !strings.Contains(logged.String(), "cannot be used") || strings.Contains(logged.String(), "not-a-bcrypt") {
		t.Fatalf("log %q: want a warning about the file, without its content", logged.String())
	}
}

// TestNoAuthIgnoresCredentials: in noauth mode (loopback only) every
// request is admin and authentication headers are ignored, as Ironic's
// noauth does: a broken token does not make a request fail.
func TestNoAuthIgnoresCredentials(t *testing.T) {
	t.Parallel()
	s := newCustomServer(t, publicapi.NoAuth{}, conductor.Options{})
	for name, h := range map[string][]string{
		"none":          nil,
		"broken bearer": {"Authorization", "Bearer not-a-token"},
		"broken token":  {"X-Auth-Token", "not-a-token"},
		"wrong basic":   {"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("x:y"))},
	} {
		h = append(h, "X-OpenStack-Ironic-API-Version", "1.81")
		must(t, s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "name": "noauth-`+strings.ReplaceAll(name, " ", "-")+`"}`, h...), 201)
		must(t, s.do(t, "GET", "/v1/nodes", "", h...), 200)
	}
}
