package publicapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/token"
)

// as returns request headers for a caller with role at API version v
// ("" for no version header).
func as(t *testing.T, role, v string) []string {
	t.Helper()
	h := []string{"X-Auth-Token", mintToken(t, testKeys, role, token.AudiencePublic, time.Hour)}
	if v != "" {
		h = append(h, "X-OpenStack-Ironic-API-Version", v)
	}
	return h
}

// latest is an admin at the newest version.
func latest(t *testing.T) []string { return as(t, "admin", publicapi.MaxVersion.String()) }

// jsonOf decodes a response body, failing the test on malformed JSON.
func jsonOf(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %s", r.status, r.body)
	}
	return m
}

// must fails unless r has the wanted status.
func must(t *testing.T, r response, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// createNode creates a node from a JSON body and returns its UUID.
func (s *server) createNode(t *testing.T, body string) string {
	t.Helper()
	r := must(t, s.do(t, "POST", "/v1/nodes", body, latest(t)...), 201)
	return jsonOf(t, r)["uuid"].(string)
}

// seedNodes inserts n nodes named prefix-00001... in one statement.
func seedNodes(t testing.TB, db *sqlx.DB, n int, prefix string) {
	t.Helper()
	_, err := db.Exec(`INSERT INTO nodes (uuid, name, driver, provision_state, power_state, resource_class,
			driver_info, properties, provision_updated_at)
		SELECT gen_random_uuid(), $2 || '-' || lpad(g::text, 6, '0'), 'fake', 'available', 'power off', 'bm.small',
			jsonb_build_object('ipmi_address', '10.1.' || (g / 250) || '.' || (g % 250), 'ipmi_password', 'secret-' || g),
			jsonb_build_object('cpus', 16, 'memory_mb', 65536, 'local_gb', 480, 'cpu_arch', 'x86_64'),
			now()
		FROM generate_series(1, $1) AS g`, n, prefix)
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot digests the tables an operator can change, so a test can prove
// that refused requests changed nothing.
func snapshot(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"nodes", "ports", "chassis"} {
		var digest *string
		if err := db.Get(&digest, fmt.Sprintf(`SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM %s t`, table)); err != nil {
			t.Fatal(err)
		}
		d := "empty"
		if digest != nil {
			d = *digest
		}
		parts = append(parts, table+"="+d)
	}
	return strings.Join(parts, " ")
}
