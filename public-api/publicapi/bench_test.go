package publicapi_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/token"
)

// benchClients is the number of concurrent clients of every benchmark.
const benchClients = 16

// BenchmarkNodes measures GET /v1/nodes?limit=100 (summary pages at random
// places in the table, as clients paging through it) and GET
// /v1/nodes/{uuid} with 10,000 and 100,000 nodes in the database, at 16
// concurrent clients, through the whole stack (HTTP, JWT check, version
// negotiation, PostgreSQL, rendering). It reports requests per second and
// the 50th and 99th percentile latencies; it asserts nothing about them.
// Each b.N iteration is one full load run.
func BenchmarkNodes(b *testing.B) {
	// As ferric-public-api runs (GOGC 400 unless set; see public-api/main.go).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, size := range []int{10_000, 100_000} {
		s := newServer(b)
		seedNodes(b, s.DB, size, "bench")
		if _, err := s.DB.Exec(`ANALYZE nodes`); err != nil {
			b.Fatal(err)
		}
		var sample []string
		if err := s.DB.Select(&sample, `SELECT uuid FROM nodes ORDER BY random() LIMIT 2000`); err != nil {
			b.Fatal(err)
		}
		tok := mintToken(b, testKeys, "reader", token.AudiencePublic, time.Hour)
		b.Run(fmt.Sprintf("list/nodes=%d", size), func(b *testing.B) {
			for range b.N {
				runLoad(b, s.URL, tok, 2000, func(i int) string {
					if i%10 == 0 {
						return "/v1/nodes?limit=100" // the first page
					}
					return "/v1/nodes?limit=100&marker=" + sample[rand.IntN(len(sample))]
				})
			}
		})
		b.Run(fmt.Sprintf("show/nodes=%d", size), func(b *testing.B) {
			for range b.N {
				runLoad(b, s.URL, tok, 6000, func(int) string {
					return "/v1/nodes/" + sample[rand.IntN(len(sample))]
				})
			}
		})
	}
}

// runLoad sends requests GETs from benchClients goroutines (after a short
// warm-up) and reports rps, p50-ms and p99-ms.
func runLoad(b *testing.B, base, tok string, requests int, path func(i int) string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	defer client.CloseIdleConnections()
	get := func(i int) error {
		req, err := http.NewRequest(http.MethodGet, base+path(i), nil)
		if err != nil {
			return err
		}
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("X-OpenStack-Ironic-API-Version", publicapi.MaxVersion.String())
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", req.URL.Path, resp.StatusCode)
		}
		return nil
	}
	latencies := make([]time.Duration, requests)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	work := func(n int, record bool) time.Duration {
		next.Store(0)
		var wg sync.WaitGroup
		start := time.Now()
		for range benchClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					t0 := time.Now()
					if err := get(i); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					if record {
						latencies[i] = time.Since(t0)
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	work(200, false) // warm-up: connections, plans, caches
	elapsed := work(requests, true)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(float64(requests)/elapsed.Seconds(), "rps")
	b.ReportMetric(ms(latencies[requests/2]), "p50-ms")
	b.ReportMetric(ms(latencies[requests*99/100]), "p99-ms")
}
