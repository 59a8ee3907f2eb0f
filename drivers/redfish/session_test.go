package redfish

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// newSessionBMC serves a simulator with a SessionService and counts
// requests that carried HTTP Basic credentials.
func newSessionBMC(t *testing.T, opts redfishsim.Options) (*testBMC, *atomic.Int64) {
	t.Helper()
	opts.SessionService = true
	opts.Username, opts.Password = testUser, testPassword
	sim := redfishsim.New(opts)
	var basic atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			basic.Add(1)
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return &testBMC{sim: sim, srv: srv}, &basic
}

func TestSessionAuthLogsInAndOut(t *testing.T) {
	t.Parallel()
	b, basic := newSessionBMC(t, redfishsim.Options{MaxSessions: 1})
	d, _ := newDriver(t, Options{})
	n := b.node(map[string]any{keyAuthType: "session"})
	ctx := ctxWithTimeout(t, 5*time.Second)

	// MaxSessions 1: five operations only work if each logs out.
	for range 5 {
		if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.PowerState(ctx, n); err != nil || got != drivers.PowerOn {
		t.Fatalf("PowerState: %q, %v", got, err)
	}
	if b.sim.OpenSessions() != 0 {
		t.Fatalf("%d sessions left open", b.sim.OpenSessions())
	}
	if logins, logouts := b.sim.RequestCount("POST", "/redfish/v1/SessionService/Sessions"), countPrefix(b.sim.Routes(), "DELETE /redfish/v1/SessionService/Sessions/"); logins != 6 || logouts != 6 {
		t.Fatalf("%d logins, %d distinct sessions deleted; want 6 and 6", logins, logouts)
	}
	if basic.Load() != 0 {
		t.Fatalf("%d requests sent Basic credentials in session mode", basic.Load())
	}
	if b.sim.PowerState("1") != "On" {
		t.Fatal("power on did not happen")
	}
}

func countPrefix(routes []string, prefix string) int {
	n := 0
	for _, r := range routes {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func TestBasicAuthSendsCredentialsEveryTime(t *testing.T) {
	t.Parallel()
	b, basic := newSessionBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	if _, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), b.node(nil)); err != nil {
		t.Fatal(err)
	}
	if basic.Load() != 1 || b.sim.RequestCount("POST", "/redfish/v1/SessionService/Sessions") != 0 {
		t.Fatalf("basic auth: %d Basic requests, %v", basic.Load(), b.sim.Routes())
	}
}

func TestSessionAuthWithoutSessionService(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	_, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), b.node(map[string]any{keyAuthType: "session"}))
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "no SessionService; set redfish_auth_type to basic") {
		t.Fatalf("error does not say what to do: %v", err)
	}
}

func TestSessionIsLoggedOutWhenTheOperationFails(t *testing.T) {
	t.Parallel()
	b, _ := newSessionBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultStatus, Status: 500, Method: "GET", Path: "/Systems/1"})
	_, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), b.node(map[string]any{keyAuthType: "session"}))
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "GET /redfish/v1/Systems/1: HTTP 500") {
		t.Fatalf("error %v", err)
	}
	if b.sim.OpenSessions() != 0 {
		t.Fatal("the session of a failed operation was left open")
	}
}

// TestSessionIsLoggedOutWithinTheDeadlineAfterAHang: the operation gives up
// early enough that the logout still fits in the caller's deadline.
func TestSessionIsLoggedOutWithinTheDeadlineAfterAHang(t *testing.T) {
	t.Parallel()
	b, _ := newSessionBMC(t, redfishsim.Options{})
	d, logs := newDriver(t, Options{})
	b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultHang, Method: "GET", Path: "/Systems/1"})
	began := time.Now()
	ctx := ctxWithTimeout(t, 800*time.Millisecond)
	_, err := d.PowerState(ctx, b.node(map[string]any{keyAuthType: "session"}))
	assertCleanError(t, err, "read power state")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if took := time.Since(began); took > 800*time.Millisecond+250*time.Millisecond { // slack for a loaded machine
		t.Fatalf("returned after %v, past the 800ms deadline", took)
	}
	if b.sim.OpenSessions() != 0 {
		t.Fatalf("session left open; logs: %s", logs)
	}
	if ctx.Err() != nil {
		t.Fatal("the operation used the whole deadline, leaving none for the logout")
	}
}

func TestSessionLoginWithWrongPassword(t *testing.T) {
	t.Parallel()
	b, _ := newSessionBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	n := b.node(map[string]any{keyAuthType: "session"})
	b.sim.SetPowerState("1", "On")
	// The simulator knows testPassword; give the driver another one and make
	// sure neither appears.
	n.DriverInfo[keyPassword] = testPassword + "-old"
	_, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), n)
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "log in: POST /redfish/v1/SessionService/Sessions: HTTP 401 Unauthorized (check redfish_username and redfish_password)") {
		t.Fatalf("error %v", err)
	}
	if b.sim.OpenSessions() != 0 {
		t.Fatal("a session is open after a failed login")
	}
}

func TestFailedLogoutIsLoggedNotReturned(t *testing.T) {
	t.Parallel()
	b, _ := newSessionBMC(t, redfishsim.Options{InitialPower: "On"})
	d, logs := newDriver(t, Options{})
	b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultStatus, Status: 500, Method: "DELETE"})
	got, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), b.node(map[string]any{keyAuthType: "session"}))
	if err != nil || got != drivers.PowerOn {
		t.Fatalf("a failed logout failed the operation: %q, %v", got, err)
	}
	if !strings.Contains(logs.String(), "session logout failed") || !strings.Contains(logs.String(), "rack1-node7") {
		t.Fatalf("logout failure not logged: %s", logs)
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Fatalf("log shows the password: %s", logs)
	}
}
