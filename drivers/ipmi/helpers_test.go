package ipmi

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/ipmi/ipmisim"
)

// newTestDriver is New with a fast soft-off poll, for tests.
func newTestDriver() *Driver {
	d := New()
	d.pollInterval = 50 * time.Millisecond
	return d
}

// simNode starts an ipmi_sim for the test and returns a node using it.
func simNode(t *testing.T) (*ipmisim.Sim, drivers.Node) {
	t.Helper()
	sim := ipmisim.Start(t)
	return sim, drivers.Node{UUID: "3f1b8c2e-6d1a-4c55-9a0e-5b7a1d2c9e40", Name: "node-" + t.Name(), DriverInfo: sim.DriverInfo()}
}

// withInfo returns a copy of n whose driver_info has kv applied.
func withInfo(n drivers.Node, kv map[string]any) drivers.Node {
	info := make(map[string]any, len(n.DriverInfo)+len(kv))
	for k, v := range n.DriverInfo {
		info[k] = v
	}
	for k, v := range kv {
		info[k] = v
	}
	n.DriverInfo = info
	return n
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// countCalls counts chassis calls that contain substr.
func countCalls(sim *ipmisim.Sim, substr string) int {
	n := 0
	for _, c := range sim.Calls() {
		if strings.Contains(c, substr) {
			n++
		}
	}
	return n
}

// silentBMC listens on a loopback UDP port, reads every packet and never
// answers: a BMC that hangs. It returns the port and a packet counter.
func silentBMC(t *testing.T) (port int, packets func() int) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return // closed at cleanup
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	})
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return conn.LocalAddr().(*net.UDPAddr).Port, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// closedPort returns a loopback UDP port with nothing listening.
func closedPort(t *testing.T) int {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	conn.Close()
	return port
}

// checkError asserts the error names the node and the operation.
func checkError(t *testing.T, err error, n drivers.Node, op string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: want an error, got nil", op)
	}
	msg := err.Error()
	if !strings.Contains(msg, n.Label()) || !strings.Contains(msg, op) {
		t.Errorf("error should name node %q and operation %q: %v", n.Label(), op, msg)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error should be one line: %q", msg)
	}
}

// within asserts f returns within limit and hands back its error.
func within(t *testing.T, limit time.Duration, f func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	err := f()
	took := time.Since(start)
	if took > limit {
		t.Errorf("took %s, want at most %s", took, limit)
	}
	return took, err
}

// expectNoLeakedGoroutines waits until the goroutine count is back to
// baseline. Only meaningful in tests that do not call t.Parallel: Go runs
// those alone, before the parallel ones resume.
func expectNoLeakedGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines left behind (baseline %d):\n%s", n-baseline, baseline, buf)
	}
}

func isDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
