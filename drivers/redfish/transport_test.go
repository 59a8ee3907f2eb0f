package redfish

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// newCountingBMC serves a simulator and counts the TCP connections opened
// to it.
func newCountingBMC(t *testing.T, opts redfishsim.Options) (*testBMC, *atomic.Int64) {
	t.Helper()
	opts.Username, opts.Password = testUser, testPassword
	sim := redfishsim.New(opts)
	srv := httptest.NewUnstartedServer(sim.Handler())
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() { sim.Close(); srv.Close() })
	return &testBMC{sim: sim, srv: srv}, &conns
}

func TestConnectionsAreReusedAcrossOperations(t *testing.T) {
	t.Parallel()
	b, conns := newCountingBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)
	n := b.node(nil)
	for range 10 {
		if _, err := d.PowerState(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetBootDevice(ctx, n, drivers.BootPXE, false); err != nil {
		t.Fatal(err)
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("%d connections for 11 sequential operations, want 1", got)
	}
	if got := d.transports.len(); got != 1 {
		t.Fatalf("%d transports cached, want 1", got)
	}
}

func TestOneTransportPerEndpointCredentialsAndTLS(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	other := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)
	variants := []drivers.Node{
		b.node(nil),
		b.node(map[string]any{keySystemID: "/redfish/v1/Systems/1"}), // same transport
		b.node(map[string]any{keyPassword: testPassword + "2"}),      // other credentials
		b.node(map[string]any{keyUsername: "operator"}),
		b.node(map[string]any{keyVerifyCA: false}), // other TLS settings
		other.node(nil), // other endpoint
	}
	for _, n := range variants {
		_, _ = d.PowerState(ctx, n) // wrong credentials fail; the transport is made all the same
	}
	if got := d.transports.len(); got != 5 {
		t.Fatalf("%d transports, want 5", got)
	}
}

func TestTransportCacheIsBounded(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t, Options{MaxTransports: 2})
	ctx := ctxWithTimeout(t, 5*time.Second)
	var first drivers.Node
	for i := range 4 {
		b := newBMC(t, redfishsim.Options{})
		if i == 0 {
			first = b.node(nil)
		}
		if _, err := d.PowerState(ctx, b.node(nil)); err != nil {
			t.Fatal(err)
		}
		if got := d.transports.len(); got > 2 {
			t.Fatalf("%d transports with MaxTransports 2", got)
		}
	}
	// The evicted BMC still works: a new transport is made.
	if _, err := d.PowerState(ctx, first); err != nil {
		t.Fatal(err)
	}
}

func TestIdleTransportsExpire(t *testing.T) {
	t.Parallel()
	c := newTransportCache(10, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	cfgA := &bmcConfig{endpoint: "http://a"}
	cfgB := &bmcConfig{endpoint: "http://b"}
	rtA, err := c.get(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Second)
	if _, err := c.get(cfgB); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Second) // a idle 70 s, b idle 20 s
	if rt, _ := c.get(cfgB); rt == nil || c.len() != 1 {
		t.Fatalf("after a's ttl: %d transports, want only b", c.len())
	}
	if again, _ := c.get(cfgA); again == rtA {
		t.Fatal("an expired transport was handed out again")
	}
}

func TestCloseDropsTransportsAndTheDriverStaysUsable(t *testing.T) {
	t.Parallel()
	b, conns := newCountingBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)
	if _, err := d.PowerState(ctx, b.node(nil)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d.transports.len() != 0 {
		t.Fatal("Close left transports cached")
	}
	if _, err := d.PowerState(ctx, b.node(nil)); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if got := conns.Load(); got != 2 {
		t.Fatalf("%d connections; want 2 (Close closed the first)", got)
	}
}

func TestManyNodesConcurrently(t *testing.T) {
	t.Parallel()
	const bmcs, rounds = 8, 5
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 20*time.Second)
	var nodes []drivers.Node
	var sims []*redfishsim.Simulator
	for i := range bmcs {
		opts := redfishsim.Options{Latency: 5 * time.Millisecond}
		if i%2 == 1 {
			opts.SessionService = true
		}
		b := newBMC(t, opts)
		n := b.node(nil)
		n.Name = fmt.Sprintf("node-%d", i)
		if opts.SessionService {
			n.DriverInfo[keyAuthType] = "session"
		}
		nodes, sims = append(nodes, n), append(sims, b.sim)
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		for r := range rounds {
			wg.Go(func() {
				action := []drivers.PowerAction{drivers.ActionPowerOn, drivers.ActionReboot}[r%2]
				if err := d.SetPowerState(ctx, n, action, 0); err != nil {
					t.Errorf("node %d: %v", i, err)
				}
				if _, err := d.PowerState(ctx, n); err != nil {
					t.Errorf("node %d: %v", i, err)
				}
				if err := d.SetBootDevice(ctx, n, drivers.BootPXE, true); err != nil {
					t.Errorf("node %d: %v", i, err)
				}
			})
		}
	}
	wg.Wait()
	for i, sim := range sims {
		if sim.PowerState("1") != "On" || sim.Boot("1").Target != "Pxe" || sim.OpenSessions() != 0 {
			t.Errorf("node %d: power %s, boot %+v, sessions %d", i, sim.PowerState("1"), sim.Boot("1"), sim.OpenSessions())
		}
	}
}

// TestNoGoroutineLeftBehind is not parallel: it runs alone, so the number
// of goroutines is its own. After the driver and the BMC are closed, the
// count must come back to where it started.
func TestNoGoroutineLeftBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		sim := redfishsim.New(redfishsim.Options{Username: testUser, Password: testPassword, SessionService: true})
		srv := httptest.NewServer(sim.Handler())
		defer srv.Close()
		defer sim.Close()
		d := NewWithOptions(Options{})
		defer d.Close()
		b := &testBMC{sim: sim, srv: srv}
		ctx := ctxWithTimeout(t, 10*time.Second)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				n := b.node(nil)
				if i%2 == 0 {
					n.DriverInfo[keyAuthType] = "session"
				}
				if err := d.SetPowerState(ctx, n, drivers.ActionReboot, 0); err != nil {
					t.Error(err)
				}
				if _, err := d.CallVendor(ctx, n, "eject_virtual_media", "POST", nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		sim.HangNext(1) // a request abandoned at its deadline leaves nothing either
		if _, err := d.PowerState(ctxWithTimeout(t, 50*time.Millisecond), b.node(nil)); err == nil {
			t.Error("hang: no error")
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, httpGoroutines())
	}
}
