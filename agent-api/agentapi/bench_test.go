package agentapi_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

// The load: 64 agents at once. Each operation runs two phases of
// benchPhase: at capacity (every agent sends its next request as soon as
// the last is answered: requests per second, and latency with 64 requests
// always queued), then paced at a realistic offered rate (latency of one
// request in a busy system, measured from when it was due, so a stall
// cannot hide queued requests).
const (
	benchAgents = 64
	benchPhase  = 2500 * time.Millisecond
	// benchLookupRate is the paced lookup rate: a thousand machines
	// booting into the agent every second.
	benchLookupRate = 1000
	// benchCheckinInterval paces checkins as a fleet of all the nodes
	// checking in at the default interval (3,333 a second for 100,000).
	benchCheckinInterval = 30 * time.Second
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
		`ANALYZE`,
	} {
		var args []any
		if bytes.Contains([]byte(stmt), []byte("$1")) {
			args = append(args, nodes)
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d nodes and ports in %v", nodes, time.Since(began).Round(time.Millisecond))

	s := newStack(b, db, stackOptions{api: agentapi.Options{RateLimit: 1e9}}) // the limiter runs, never limits
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: benchAgents, MaxConnsPerHost: benchAgents}}
	var peak memPeak
	stopSampling := peak.sample(50 * time.Millisecond)

	lookup := func(rng *rand.Rand) int {
		id := 1 + rng.IntN(nodes)
		body := fmt.Appendf(nil, benchInventory, benchMAC(id), benchMAC(id+1<<30))
		return post(client, s.url+"/v1/lookup", body, "")
	}
	checkin := func(rng *rand.Rand) int {
		id := 1 + rng.IntN(nodes)
		claims := token.Claims{Generation: 1}
		claims.Subject = benchUUID(id)
		tok, _ := agentKeys.Mint(claims, testIssuer, token.AudienceAgent, time.Hour, time.Now())
		return post(client, s.url+"/v1/checkin", []byte(`{"agent_version": "ferric-agent 1.0", "status": "idle"}`), tok)
	}
	checkinRate := float64(nodes) / benchCheckinInterval.Seconds()

	b.ResetTimer()
	load(lookup, 0).report(b, "lookup", true)
	load(lookup, benchLookupRate).report(b, "lookup_paced", false)
	load(checkin, 0).report(b, "checkin", true)
	load(checkin, checkinRate).report(b, "checkin_paced", false)
	b.StopTimer()
	stopSampling()
	b.ReportMetric(float64(peak.heapInuse)/(1<<20), "peak_heap_inuse_MB")
	b.ReportMetric(float64(peak.sys)/(1<<20), "peak_sys_MB")
	b.Logf("paced phases: %d lookups/s and %.0f checkins/s offered", benchLookupRate, checkinRate)
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

func post(client *http.Client, url string, body []byte, tok string) int {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// loadResult is what one phase measured.
type loadResult struct {
	latencies []time.Duration
	errors    int
	elapsed   time.Duration
}

// load runs op from benchAgents goroutines for benchPhase; op returns the
// HTTP status. With rate 0 every agent sends as soon as it can; otherwise
// the agents share a schedule of rate requests a second, and a request's
// latency counts from when it was due.
func load(op func(rng *rand.Rand) int, rate float64) loadResult {
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(benchPhase)
	for a := 0; a < benchAgents; a++ {
		wg.Add(1)
		go func() { // ends at the deadline
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(a), uint64(start.UnixNano())))
			var lat []time.Duration
			errs := 0
			for k := 0; ; k++ {
				due := time.Now()
				if rate > 0 {
					due = start.Add(time.Duration(float64(k*benchAgents+a) / rate * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				if due.After(deadline) {
					break
				}
				if status := op(rng); status != 200 {
					errs++
				}
				lat = append(lat, time.Since(due))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r loadResult) report(b *testing.B, name string, throughput bool) {
	slices.Sort(r.latencies)
	pct := func(p float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		return float64(r.latencies[int(p*float64(len(r.latencies)-1))]) / float64(time.Millisecond)
	}
	if throughput {
		b.ReportMetric(float64(len(r.latencies))/r.elapsed.Seconds(), name+"s/s")
	}
	b.ReportMetric(pct(0.50), name+"_p50_ms")
	b.ReportMetric(pct(0.99), name+"_p99_ms")
	b.ReportMetric(float64(r.errors), name+"_errors")
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
