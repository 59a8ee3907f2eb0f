package agentapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func agentServer(t *testing.T, db *sqlx.DB, fastTrack bool) string {
	t.Helper()
	c := conductor.New(db, drivers.NewRegistry(), discard, conductor.Options{FastTrack: fastTrack})
	srv := httptest.NewServer(agentapi.New(c, db, discard).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestOperatorEnrollsAgentFinds is the foundation's end-to-end slice: an
// operator creates a node and a port through gophercloud on the public API;
// an agent on that machine finds the node through the agent API by MAC.
func TestOperatorEnrollsAgentFinds(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	keys, err := token.ParseKeys("k1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	pub := httptest.NewServer(publicapi.New(conductor.New(db, reg, discard, conductor.Options{}),
		publicapi.JWTAuth{Keys: keys, Issuer: "t"}, db, discard).Handler())
	t.Cleanup(pub.Close)
	agentURL := agentServer(t, db, true)

	client, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: pub.URL + "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	claims := token.Claims{Role: "admin"}
	client.ProviderClient.TokenID, err = keys.Mint(claims, "t", token.AudiencePublic, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
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
	status, body := get(t, agentURL+"/v1/lookup?addresses=zz:zz,52:54:00:AA:AA:AA,52:54:00:12:34:56")
	if status != 200 {
		t.Fatalf("lookup: %d %s", status, body)
	}
	var got struct {
		Node struct {
			UUID         string         `json:"uuid"`
			InstanceInfo map[string]any `json:"instance_info"`
		} `json:"node"`
		Config struct {
			HeartbeatTimeout int `json:"heartbeat_timeout"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
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
}

func TestLookupRules(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	mk := func(name, state string, macs ...string) {
		var id int64
		if err := db.Get(&id, `INSERT INTO nodes (uuid, name, driver, provision_state)
			VALUES (gen_random_uuid(), $1, 'fake', $2) RETURNING id`, name, state); err != nil {
			t.Fatal(err)
		}
		for _, m := range macs {
			if _, err := db.Exec(`INSERT INTO ports (uuid, address, node_id) VALUES (gen_random_uuid(), $1, $2)`, m, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("deploying", conductor.StateWaitCallback, "52:54:00:00:00:01")
	mk("enrolled", conductor.StateEnroll, "52:54:00:00:00:02")
	mk("active", conductor.StateActive, "52:54:00:00:00:03")
	mk("twin-a", conductor.StateCleanWait, "52:54:00:00:00:04")
	mk("twin-b", conductor.StateCleanWait, "52:54:00:00:00:05")

	strict, fast := agentServer(t, db, false), agentServer(t, db, true)
	tests := []struct {
		name, url, query string
		want             int
	}{
		{"waiting node", strict, "52:54:00:00:00:01", 200},
		{"enroll without fast track", strict, "52:54:00:00:00:02", 404},
		{"enroll with fast track", fast, "52:54:00:00:00:02", 200},
		{"active never", fast, "52:54:00:00:00:03", 404},
		{"unknown MAC", strict, "52:54:00:00:00:99", 404},
		{"MACs of two nodes", strict, "52:54:00:00:00:04,52:54:00:00:00:05", 404},
		{"no valid MAC", strict, "zz,12", 400},
		{"no addresses", strict, "", 400},
	}
	var notFoundBodies []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, tc.url+"/v1/lookup?addresses="+tc.query)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if status == 404 {
				notFoundBodies = append(notFoundBodies, string(body))
			}
		})
	}
	for _, b := range notFoundBodies[1:] {
		if b != notFoundBodies[0] {
			t.Errorf("404 bodies differ, leaking why: %q vs %q", b, notFoundBodies[0])
		}
	}
}

func TestOnlyAgentRoutesExist(t *testing.T) {
	t.Parallel()
	url := agentServer(t, pgtest.NewDB(t), false)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/v1/nodes", 404},
		{"GET", "/v1", 404},
		{"GET", "/v1/lookup/", 404},
		{"POST", "/v1/lookup", 405},
		{"DELETE", "/", 405},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	status, body := get(t, url+"/")
	var root struct {
		DefaultVersion struct{ Version string } `json:"default_version"`
	}
	if err := json.Unmarshal(body, &root); err != nil || status != 200 {
		t.Fatal(status, string(body))
	}
	var major, minor int
	if _, err := fmt.Sscanf(root.DefaultVersion.Version, "%d.%d", &major, &minor); err != nil || major != 1 || minor < 68 {
		t.Errorf("advertised version %q; IPA needs >= 1.68", root.DefaultVersion.Version)
	}
}
