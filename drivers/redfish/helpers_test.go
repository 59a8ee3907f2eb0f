package redfish

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
	"github.com/ferric-metal/ferric/shared/syncbuf"
)

// testPassword is distinctive so any leak into an error is found.
const (
	testUser     = "ferric-admin"
	testPassword = "Sup3r-S3cret/pa55word"
)

// TestMain fails the run if any HTTP goroutine outlives the tests: every
// test closes its servers and drivers, so none may be left behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForHTTPGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left behind after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForHTTPGoroutines waits until no goroutine of net/http's client or
// server, or of this module, is alive, and returns the stacks of those left.
func waitForHTTPGoroutines(limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		leaked := httpGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*conn).serve") ||
			strings.Contains(g, "ferric/drivers/redfish") && !strings.Contains(g, "httpGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// testBMC is a simulated BMC served on 127.0.0.1.
type testBMC struct {
	sim *redfishsim.Simulator
	srv *httptest.Server
}

func newBMC(t testing.TB, opts redfishsim.Options) *testBMC {
	t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = testUser, testPassword
	}
	sim := redfishsim.New(opts)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return &testBMC{sim: sim, srv: srv}
}

// node is a node on b with system "1" and the test credentials; extra
// entries override or, with a nil value, remove keys.
func (b *testBMC) node(extra map[string]any) drivers.Node {
	info := map[string]any{
		keyAddress:  b.srv.URL,
		keySystemID: "1",
		keyUsername: testUser,
		keyPassword: testPassword,
	}
	for k, v := range extra {
		if v == nil {
			delete(info, k)
		} else {
			info[k] = v
		}
	}
	return drivers.Node{UUID: "6f1c0e1a-7d3b-4c53-9a51-2b0c4b3f9d10", Name: "rack1-node7", DriverInfo: info}
}

// newDriver returns a driver that polls fast and logs into the returned
// buffer; it is closed when the test ends.
func newDriver(t testing.TB, opts Options) (*Driver, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	if opts.PowerPollInterval == 0 {
		opts.PowerPollInterval = 10 * time.Millisecond
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	d := NewWithOptions(opts)
	t.Cleanup(func() { _ = d.Close() })
	return d, logs
}

func ctxWithTimeout(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// assertCleanError checks an operation error: it exists, names the node and
// the operation, and holds no credential in any form.
func assertCleanError(t *testing.T, err error, op string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", op)
	}
	msg := err.Error()
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	for _, secret := range []string{testPassword, basic, "Authorization"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("%s: error shows %q: %s", op, secret, msg)
		}
	}
	if !strings.Contains(msg, "rack1-node7") || !strings.Contains(msg, op) {
		t.Fatalf("error does not name the node and %q: %s", op, msg)
	}
}

func wantNotSupported(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, drivers.ErrNotSupported) {
		t.Fatalf("want ErrNotSupported, got %v", err)
	}
}

// patchSystem sends a raw PATCH to the simulator, for set-ups the driver
// cannot make.
func patchSystem(t *testing.T, b *testBMC, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, b.srv.URL+"/redfish/v1/Systems/1", strings.NewReader(body))
	req.SetBasicAuth(testUser, testPassword)
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("set-up PATCH: %d", resp.StatusCode)
	}
}
