package publicapi_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

const issuer = "ferric-test"

// testKeys sign operator tokens in tests; agentKeys stand for the agent
// API's keys, which the operator API must not accept.
var (
	testKeys  = mustKeys("op1 " + "b3BlcmF0b3Ita2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5YWJjZGVm")
	agentKeys = mustKeys("ag1 " + "YWdlbnQta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5YWJjZGVmZ2g=")
)

func mustKeys(s string) *token.Keys {
	k, err := token.ParseKeys(s)
	if err != nil {
		panic(err)
	}
	return k
}

// server is an operator API over a fresh database.
type server struct {
	URL string
	DB  *sqlx.DB
}

func newServer(t testing.TB) *server {
	t.Helper()
	return newServerWith(t)
}

// newServerWith is newServer with API options.
func newServerWith(t testing.TB, opts ...publicapi.Option) *server {
	t.Helper()
	return newCustomServer(t, publicapi.NewJWTAuth(testKeys, issuer), conductor.Options{}, opts...)
}

// newCustomServer is an operator API over a fresh database with the given
// authentication, conductor options and API options, and the fake driver.
func newCustomServer(t testing.TB, auth publicapi.Authenticator, copts conductor.Options, opts ...publicapi.Option) *server {
	t.Helper()
	db := pgtest.NewDB(t)
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := publicapi.New(conductor.New(db, reg, log, copts), auth, db, log, opts...)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &server{URL: srv.URL, DB: db}
}

func mintToken(t testing.TB, keys *token.Keys, role, audience string, ttl time.Duration) string {
	t.Helper()
	claims := token.Claims{Role: role}
	claims.Subject = "test-" + role
	tok, err := keys.Mint(claims, issuer, audience, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// gopherClient returns a gophercloud baremetal client for s with a token of
// the given role, speaking the latest version we support.
func (s *server) gopherClient(t *testing.T, role string) *gophercloud.ServiceClient {
	t.Helper()
	client, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: s.URL + "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	client.ProviderClient.TokenID = mintToken(t, testKeys, role, token.AudiencePublic, time.Hour)
	client.Microversion = publicapi.MaxVersion.String()
	return client
}

func countRows(t *testing.T, db *sqlx.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM "+table); err != nil {
		t.Fatal(err)
	}
	return n
}
