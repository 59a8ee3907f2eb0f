package agentapi_test

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/shared/loadgen"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// The load: 64 agents at once, each on its own kept-alive connection. Each
// operation runs two loads of benchPhase, benchRounds times: at capacity
// (every agent sends its next request as soon as the last is answered:
// requests per second, and latency with 64 requests always in flight), then
// paced at a realistic offered rate (latency of one request in a busy
// system, counted from when it was due, so a stall cannot hide queued
// requests). The figures are the rounds' medians.
const (
	benchAgents = 64
	benchPhase  = 2 * time.Second
	benchRounds = 3
	// benchLookupRate is the paced lookup rate: a thousand machines
	// booting into the agent every second.
	benchLookupRate = 1000
	// benchCheckinInterval paces checkins as a fleet of all the nodes
	// checking in at the default interval (3,333 a second for 100,000).
	benchCheckinInterval = 30 * time.Second
	// benchTokens is how many nodes' agents check in (each with the token
	// it holds, minted before the load).
	benchTokens = 20_000
)

// BenchmarkAgentAPI measures the agent API under 64 concurrent agents with
// 10,000 and 100,000 nodes in the database: native lookups (an inventory
// in, a token out: a first lookup writes the reveal and a history entry)
// and native checkins (nodes in wait call-back: the deploy instructions,
// one read and one write), per second at capacity, p50 and p99 latency at
// capacity and paced, and the peak memory of the process, which also runs
// the load generator (so the figures are an upper bound). `make bench` runs
// it; nothing is asserted.
func BenchmarkAgentAPI(b *testing.B) {
	for _, nodes := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) { benchmarkAgentAPI(b, nodes) })
	}
}

func benchmarkAgentAPI(b *testing.B, nodes int) {
	db := pgtest.NewDB(b)
	db.SetMaxOpenConns(20) // FERRIC_DATABASE_MAX_CONNS's default
	db.SetMaxIdleConns(20)
	began := time.Now()
	// Node i has id i, UUID md5(i) and a port with MAC benchMAC(i).
	for _, stmt := range []string{
		`INSERT INTO nodes (uuid, driver, provision_state, driver_info, instance_info)
			SELECT md5(i::text)::uuid, 'ipmi', 'wait call-back',
				jsonb_build_object('ipmi_address', '10.' || (i >> 16) || '.' || ((i >> 8) & 255) || '.' || (i & 255), 'ipmi_password', 'x'),
				'{"image_source": "http://images.example/ubuntu-24.04.qcow2", "image_checksum": "sha256:0123", "image_disk_format": "qcow2", "root_gb": 20}'
			FROM generate_series(1, $1) AS i`,
		`INSERT INTO ports (uuid, address, node_id)
			SELECT gen_random_uuid(), '52:54:' || lpad(to_hex((id >> 24) & 255), 2, '0') || ':' || lpad(to_hex((id >> 16) & 255), 2, '0')
				|| ':' || lpad(to_hex((id >> 8) & 255), 2, '0') || ':' || lpad(to_hex(id & 255), 2, '0'), id
			FROM nodes`,
		// As tables in service: vacuumed, so that autovacuum does not start
		// on the fresh rows in the middle of a measurement.
		`VACUUM ANALYZE`,
	} {
		var args []any
		if bytes.Contains([]byte(stmt), []byte("$1")) {
			args = append(args, nodes)
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			b.Fatal(err)
		}
	}
	tokens := make([]string, min(nodes, benchTokens))
	for k := range tokens {
		claims := token.Claims{Generation: 1}
		claims.Subject = benchUUID(1 + rand.IntN(nodes))
		tok, err := agentKeys.Mint(claims, testIssuer, token.AudienceAgent, time.Hour, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		tokens[k] = "Bearer " + tok
	}
	b.Logf("seeded %d nodes and ports, minted %d agent tokens, in %v", nodes, len(tokens), time.Since(began).Round(time.Millisecond))

	// The limiter runs, never limits; the 64 agents share one address here.
	s := newStack(b, db, stackOptions{api: agentapi.Options{RateLimit: 1e9, BodiesPerSource: benchAgents}})
	clients, err := loadgen.DialN(benchAgents, s.url)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.CloseAll(clients)
	var peak memPeak
	stopSampling := peak.sample(50 * time.Millisecond)

	lookup := func(c *loadgen.Client, _ int) error {
		id := 1 + rand.IntN(nodes)
		return expectOK(c.Do(http.MethodPost, "/v1/lookup", fmt.Appendf(nil, benchInventory, benchMAC(id), benchMAC(id+1<<30))))
	}
	checkin := func(c *loadgen.Client, _ int) error {
		return expectOK(c.Do(http.MethodPost, "/v1/checkin", []byte(`{"agent_version": "ferric-agent 1.0", "status": "idle"}`),
			"Authorization", tokens[rand.IntN(len(tokens))]))
	}
	checkinRate := float64(nodes) / benchCheckinInterval.Seconds()

	b.ResetTimer()
	phases(b, clients, "lookup", lookup, benchLookupRate)
	phases(b, clients, "checkin", checkin, checkinRate)
	b.StopTimer()
	stopSampling()
	b.ReportMetric(float64(peak.heapInuse)/(1<<20), "peak_heap_inuse_MB")
	b.ReportMetric(float64(peak.sys)/(1<<20), "peak_sys_MB")
	b.Logf("paced loads: %d lookups/s and %.0f checkins/s offered", benchLookupRate, checkinRate)
}

// phases runs op at capacity and paced at rate, benchRounds times each, and
// reports the medians: name+"s/s" (at capacity), name+"_p50_ms" and
// name+"_p99_ms" (at capacity), name+"_paced_p50_ms" and
// name+"_paced_p99_ms", and the errors of every round.
func phases(b *testing.B, clients []*loadgen.Client, name string, op func(*loadgen.Client, int) error, rate float64) {
	var perSec, p50, p99, paced50, paced99 []float64
	errors := 0
	for range benchRounds {
		full := loadgen.Load{Duration: benchPhase}.Run(clients, op)
		paced := loadgen.Load{Duration: benchPhase, Rate: rate}.Run(clients, op)
		perSec = append(perSec, full.PerSecond())
		p50, p99 = append(p50, full.Percentile(0.50)), append(p99, full.Percentile(0.99))
		paced50, paced99 = append(paced50, paced.Percentile(0.50)), append(paced99, paced.Percentile(0.99))
		errors += full.Errors + paced.Errors
		if err := cmp.Or(full.FirstErr, paced.FirstErr); err != nil {
			b.Logf("%s: %v", name, err)
		}
	}
	b.ReportMetric(loadgen.Median(perSec), name+"s/s")
	b.ReportMetric(loadgen.Median(p50), name+"_p50_ms")
	b.ReportMetric(loadgen.Median(p99), name+"_p99_ms")
	b.ReportMetric(loadgen.Median(paced50), name+"_paced_p50_ms")
	b.ReportMetric(loadgen.Median(paced99), name+"_paced_p99_ms")
	b.ReportMetric(float64(errors), name+"_errors")
}

func expectOK(status int, err error) error {
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	return err
}

// benchInventory is a small IPA-shaped inventory with two interfaces.
const benchInventory = `{"interfaces": [{"name": "eno1", "mac_address": %q, "ipv4_address": "10.20.0.10"},
	{"name": "eno2", "mac_address": %q}], "cpu": {"count": 32, "architecture": "x86_64"},
	"memory": {"physical_mb": 131072}, "disks": [{"name": "/dev/sda", "size": 480103981056}],
	"bmc_address": "0.0.0.0", "bmc_v6address": "::/0", "system_vendor": {"serial_number": ""}}`

func benchMAC(id int) string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", id>>24&255, id>>16&255, id>>8&255, id&255)
}

func benchUUID(id int) string {
	sum := md5.Sum([]byte(fmt.Sprint(id)))
	h := hex.EncodeToString(sum[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// memPeak samples the process's memory while the load runs.
type memPeak struct {
	mu        sync.Mutex
	heapInuse uint64
	sys       uint64
}

// sample reads the memory statistics every interval until the returned
// function is called; that function waits for the sampler to end.
func (m *memPeak) sample(interval time.Duration) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() { // ends when stop is called
		defer close(exited)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			m.mu.Lock()
			m.heapInuse, m.sys = max(m.heapInuse, ms.HeapInuse), max(m.sys, ms.Sys)
			m.mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-exited }
}
