package redfish

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// TestFaultsGiveCleanErrors drives every fault the simulator can produce
// through the driver. Each error must name the node and the operation, say
// what went wrong, arrive within the deadline, and never contain the
// password or the Authorization header value, not even redacted (the
// driver must not put them there in the first place).
func TestFaultsGiveCleanErrors(t *testing.T) {
	t.Parallel()
	type call func(ctx context.Context, d *Driver, n drivers.Node) error
	readPower := func(ctx context.Context, d *Driver, n drivers.Node) error {
		_, err := d.PowerState(ctx, n)
		return err
	}
	powerOff := func(ctx context.Context, d *Driver, n drivers.Node) error {
		return d.SetPowerState(ctx, n, drivers.ActionPowerOff, 0)
	}
	setCD := func(ctx context.Context, d *Driver, n drivers.Node) error {
		return d.SetBootDevice(ctx, n, drivers.BootCDROM, false)
	}
	cases := []struct {
		name     string
		opts     redfishsim.Options
		info     map[string]any
		setup    func(*testBMC)
		op       string
		call     call
		deadline time.Duration
		want     string // in the message
		wantIs   error
	}{
		{name: "wrong password, basic", info: map[string]any{keyPassword: testPassword + "-wrong"},
			op: "read power state", call: readPower,
			want: "GET /redfish/v1/Systems/1: HTTP 401 Unauthorized (check redfish_username and redfish_password)"},
		{name: "wrong password, session", opts: redfishsim.Options{SessionService: true},
			info: map[string]any{keyPassword: "x" + testPassword, keyAuthType: "session"},
			op:   "read power state", call: readPower, want: "HTTP 401 Unauthorized"},
		{name: "wrong user", info: map[string]any{keyUsername: "nobody"},
			op: "set power \"power off\"", call: powerOff, want: "HTTP 401"},
		{name: "garbage JSON", setup: func(b *testBMC) { b.sim.GarbageNext(1) },
			op: "read power state", call: readPower, want: "GET /redfish/v1/Systems/1: unusable answer: invalid character"},
		{name: "garbage service root", info: map[string]any{keySystemID: nil}, setup: func(b *testBMC) { b.sim.GarbageNext(1) },
			op: "read power state", call: readPower, want: "GET /redfish/v1/: unusable answer"},
		{name: "hang", setup: func(b *testBMC) { b.sim.HangNext(1) }, deadline: 300 * time.Millisecond,
			op: "read power state", call: readPower, wantIs: context.DeadlineExceeded},
		{name: "hang during session login", opts: redfishsim.Options{SessionService: true}, info: map[string]any{keyAuthType: "session"},
			setup: func(b *testBMC) { b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultHang, Method: "POST"}) }, deadline: 300 * time.Millisecond,
			op: "read power state", call: readPower, wantIs: context.DeadlineExceeded},
		{name: "503", setup: func(b *testBMC) { b.sim.FailNext(1, 503) },
			op: "read power state", call: readPower, want: "HTTP 503 Service Unavailable: Injected fault"},
		{name: "500 on reset", opts: redfishsim.Options{InitialPower: "On"},
			setup: func(b *testBMC) { b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultStatus, Method: "POST"}) },
			op:    "set power \"power off\"", call: powerOff,
			want: "reset ForceOff: POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset: HTTP 500 Internal Server Error"},
		{name: "dropped connection", setup: func(b *testBMC) { b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultDrop, Count: 2}) },
			op: "read power state", call: readPower, want: "EOF"},
		{name: "disallowed reset type", opts: redfishsim.Options{InitialPower: "On", ResetTypes: []string{"On"}},
			op: "set power \"power off\"", call: powerOff, wantIs: drivers.ErrNotSupported},
		{name: "unsupported boot device", opts: redfishsim.Options{BootTargets: []string{"None", "Pxe"}},
			op: "set boot device \"cdrom\"", call: setCD, wantIs: drivers.ErrNotSupported},
		{name: "unknown system", info: map[string]any{keySystemID: "42"},
			op: "read power state", call: readPower, want: "GET /redfish/v1/Systems/42: HTTP 404 Not Found: The requested resource"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := newBMC(t, c.opts)
			if c.setup != nil {
				c.setup(b)
			}
			d, logs := newDriver(t, Options{})
			deadline := c.deadline
			if deadline == 0 {
				deadline = 5 * time.Second
			}
			began := time.Now()
			err := c.call(ctxWithTimeout(t, deadline), d, b.node(c.info))
			took := time.Since(began)
			t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
			assertCleanError(t, err, c.op)
			if strings.Contains(err.Error(), redacted) {
				t.Fatalf("the driver put a secret in the error and had to redact it: %v", err)
			}
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Fatalf("error %v is not %v", err, c.wantIs)
			}
			if took > deadline+250*time.Millisecond { // slack for a loaded machine under -race

				t.Fatalf("took %v for a %v deadline", took, deadline)
			}
			if strings.Contains(logs.String(), testPassword) {
				t.Fatalf("logs show the password: %s", logs)
			}
		})
	}
}

func withTestCredentials(o redfishsim.Options) redfishsim.Options {
	o.Username, o.Password = testUser, testPassword
	return o
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableBMC(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	d, _ := newDriver(t, Options{})
	n := drivers.Node{UUID: "6f1c0e1a", Name: "rack1-node7", DriverInfo: map[string]any{
		keyAddress: "http://" + addr, keyUsername: testUser, keyPassword: testPassword,
	}}
	for _, auth := range []string{"basic", "session"} {
		n.DriverInfo[keyAuthType] = auth
		_, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), n)
		assertCleanError(t, err, "read power state")
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("%s: want connection refused naming %s, got %v", auth, addr, err)
		}
	}
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	sim := redfishsim.New(withTestCredentials(redfishsim.Options{InitialPower: "On"}))
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(func() { sim.Close(); srv.Close() })
	b := &testBMC{sim: sim, srv: srv}
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)

	_, err := d.PowerState(ctx, b.node(nil))
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verifying by default against the system roots: %v", err)
	}
	if got, err := d.PowerState(ctx, b.node(map[string]any{keyVerifyCA: false})); err != nil || got != drivers.PowerOn {
		t.Fatalf("verify off: %q, %v", got, err)
	}

	caFile := t.TempDir() + "/bmc-ca.pem"
	writePEM(t, caFile, srv.Certificate().Raw)
	if got, err := d.PowerState(ctx, b.node(map[string]any{keyVerifyCA: caFile})); err != nil || got != drivers.PowerOn {
		t.Fatalf("verify with the CA bundle: %q, %v", got, err)
	}

	empty := t.TempDir() + "/empty.pem"
	writeFile(t, empty, "not a certificate")
	_, err = d.PowerState(ctx, b.node(map[string]any{keyVerifyCA: empty}))
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("bad CA bundle: %v", err)
	}
	_, err = d.PowerState(ctx, b.node(map[string]any{keyVerifyCA: t.TempDir() + "/missing.pem"}))
	assertCleanError(t, err, "read power state")
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing CA bundle: %v", err)
	}
}

// TestEchoedCredentialsAreRedacted: a BMC that echoes the credentials it
// received in an error body must not get them into Ferric's errors.
func TestEchoedCredentialsAreRedacted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error": {"message": "bad request from ` + r.Header.Get("Authorization") + ` (password ` + testPassword + `)"}}`))
	}))
	t.Cleanup(srv.Close)
	d, _ := newDriver(t, Options{})
	n := (&testBMC{srv: srv}).node(nil)
	_, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), n)
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "bad request from Basic "+redacted+" (password "+redacted+")") {
		t.Fatalf("echo not redacted as expected: %v", err)
	}
	var se *statusError
	if !errors.As(err, &se) || strings.Contains(se.redfish.Error(), testPassword) ||
		strings.Contains(se.redfish.Error(), base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))) {
		t.Fatalf("the wrapped BMC error still holds a secret: %v", err)
	}
}

func TestOversizedAnswerIsRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"PowerState": "On", "Pad": "`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for written := 0; written <= 256<<10; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}`))
	}))
	t.Cleanup(srv.Close)
	d, _ := newDriver(t, Options{})
	d.maxResponseBytes = 128 << 10 // the default 8 MiB works the same, only slower
	_, err := d.PowerState(ctxWithTimeout(t, 10*time.Second), (&testBMC{srv: srv}).node(nil))
	assertCleanError(t, err, "read power state")
	if !errors.Is(err, errResponseTooLarge) {
		t.Fatalf("want errResponseTooLarge, got %v", err)
	}
}

func TestRedirectsStayOnTheEndpoint(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("credentials followed a redirect to another endpoint: %s", r.URL)
	}))
	t.Cleanup(other.Close)
	b := newBMC(t, redfishsim.Options{InitialPower: "On"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redfish/v1/Systems/node-0": // sushy-tools style: a name redirects to the id
			http.Redirect(w, r, "/redfish/v1/Systems/1", http.StatusTemporaryRedirect)
		case "/redfish/v1/Systems/evil":
			http.Redirect(w, r, other.URL+"/redfish/v1/Systems/1", http.StatusTemporaryRedirect)
		default:
			b.sim.Handler().ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)
	proxy := &testBMC{sim: b.sim, srv: srv}
	if got, err := d.PowerState(ctx, proxy.node(map[string]any{keySystemID: "node-0"})); err != nil || got != drivers.PowerOn {
		t.Fatalf("same-endpoint redirect: %q, %v", got, err)
	}
	_, err := d.PowerState(ctx, proxy.node(map[string]any{keySystemID: "evil"}))
	assertCleanError(t, err, "read power state")
	if !strings.Contains(err.Error(), "refusing redirect to another endpoint") {
		t.Fatalf("cross-endpoint redirect: %v", err)
	}
}
