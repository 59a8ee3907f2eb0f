package conductor_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/fake"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

// cuttableProxy forwards TCP to a server until cut: then it drops every
// connection and refuses new ones, as a failed network or database would.
type cuttableProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept() // ends when ln is closed
	t.Cleanup(func() { ln.Close(); p.setCut(true); p.wg.Wait() })
	return p
}

func (p *cuttableProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			client.Close()
			continue
		}
		server, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			client.Close()
			continue
		}
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, server) // each ends when either side closes
		go p.pipe(server, client)
	}
}

func (p *cuttableProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *cuttableProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// TestDatabaseOutage cuts a conductor off its database while it works
// through power tasks, then restores it: every task completes, and each
// node's power-on is recorded exactly once.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	direct := pgtest.URL(t)
	u, _ := url.Parse(direct)
	proxy := newProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	viaProxy, err := sqlx.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	db := sqlx.MustOpen("postgres", direct)
	defer db.Close()

	reg := drivers.NewRegistry(fake.New())
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	api := conductor.New(db, reg, quiet, conductor.Options{Name: "api"})
	worker := conductor.New(viaProxy, reg, quiet, conductor.Options{Name: "cut-off", LockTTL: 2 * time.Second, TaskLease: 2 * time.Second, RetryBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = worker.RunWorkers(ctx, conductor.WorkerConfig{Pools: map[string]int{conductor.PoolOperator: 4}, PollInterval: 20 * time.Millisecond})
	}()
	go func() {
		defer wg.Done()
		_ = worker.RunPeriodic(ctx, conductor.PeriodicConfig{CheckInterval: 200 * time.Millisecond})
	}()
	defer func() { cancel(); wg.Wait() }()
	waitUntil(t, 10*time.Second, "registered", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM conductors WHERE name = 'cut-off'`)
		return n == 1
	})

	const nodes = 20
	for i := range nodes {
		n, err := api.CreateNode(context.Background(), conductor.NodeSpec{Name: ptr(fmt.Sprintf("o%02d", i)), Driver: "fake",
			DriverInfo: map[string]any{"fake_latency": "150ms"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.ChangePowerState(context.Background(), n.UUID, conductor.PowerRequest{Target: "power on"}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "some tasks under way", func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM tasks WHERE state <> 'queued'`)
		return n >= 4
	})
	proxy.setCut(true)
	time.Sleep(3 * time.Second) // longer than the leases: the conductor's claims expire meanwhile
	proxy.setCut(false)

	waitUntil(t, 30*time.Second, "all tasks done after the outage", func() bool {
		var open int
		_ = db.Get(&open, `SELECT count(*) FROM tasks WHERE state <> 'done'`)
		return open == 0
	})
	var perNode []int
	if err := db.Select(&perNode, `SELECT count(h.id) FROM nodes n
		LEFT JOIN node_history h ON h.node_id = n.id AND h.event LIKE 'power on done%'
		GROUP BY n.id`); err != nil {
		t.Fatal(err)
	}
	for i, c := range perNode {
		if c != 1 {
			t.Errorf("node %d: power-on recorded %d times, want exactly once", i, c)
		}
	}
	var retried int
	_ = db.Get(&retried, `SELECT count(*) FROM tasks WHERE attempt > 1`)
	t.Logf("%d of %d tasks needed another attempt after the outage", retried, nodes)
	var wrong int
	_ = db.Get(&wrong, `SELECT count(*) FROM nodes WHERE power_state IS DISTINCT FROM 'power on' OR target_power_state IS NOT NULL`)
	if wrong != 0 {
		t.Errorf("%d nodes not powered on cleanly after the outage", wrong)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
