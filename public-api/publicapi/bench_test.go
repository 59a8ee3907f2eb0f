package publicapi_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/loadgen"
	"github.com/ferric-metal/ferric/shared/token"
)

// benchClients is the number of concurrent clients of every benchmark.
const benchClients = 16

// benchRounds is how many load runs each benchmark makes; it reports their
// medians, and the worst round's p99.
const benchRounds = 5

// BenchmarkNodes measures GET /v1/nodes?limit=100 (summary pages at random
// places in the table, as clients paging through it) and GET
// /v1/nodes/{uuid} with 10,000 and 100,000 nodes in the database, at 16
// concurrent clients, through the whole stack (HTTP, JWT check, version
// negotiation, admission, PostgreSQL, rendering), configured as
// ferric-public-api runs by default. It reports requests per second and the
// 50th and 99th percentile latencies; it asserts nothing about them.
func BenchmarkNodes(b *testing.B) {
	// As ferric-public-api runs (GOGC 400 unless set; see public-api/main.go).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, size := range []int{10_000, 100_000} {
		s := newServer(b)
		s.DB.SetMaxOpenConns(20) // FERRIC_DATABASE_MAX_CONNS's default
		s.DB.SetMaxIdleConns(20)
		seedNodes(b, s.DB, size, "bench")
		// As a table in service: vacuumed, so that autovacuum does not
		// start on the fresh rows in the middle of a measurement.
		if _, err := s.DB.Exec(`VACUUM ANALYZE nodes`); err != nil {
			b.Fatal(err)
		}
		var sample []string
		if err := s.DB.Select(&sample, `SELECT uuid FROM nodes ORDER BY random() LIMIT 2000`); err != nil {
			b.Fatal(err)
		}
		tok := mintToken(b, testKeys, "reader", token.AudiencePublic, time.Hour)
		b.Run(fmt.Sprintf("list/nodes=%d", size), func(b *testing.B) {
			for range b.N {
				runLoad(b, s.URL, tok, 3000, func(i int) string {
					if i%10 == 0 {
						return "/v1/nodes?limit=100" // the first page
					}
					return "/v1/nodes?limit=100&marker=" + sample[rand.IntN(len(sample))]
				})
			}
		})
		b.Run(fmt.Sprintf("show/nodes=%d", size), func(b *testing.B) {
			for range b.N {
				runLoad(b, s.URL, tok, 10000, func(int) string {
					return "/v1/nodes/" + sample[rand.IntN(len(sample))]
				})
			}
		})
	}
}

// runLoad makes benchRounds runs of requests GETs from benchClients
// goroutines, each with its own kept-alive connection, after a short
// warm-up. It reports the rounds' median rps, p50-ms and p99-ms, and the
// worst round's p99 (p99-worst-ms).
func runLoad(b *testing.B, base, tok string, requests int, path func(i int) string) {
	b.Helper()
	clients, err := loadgen.DialN(benchClients, base,
		"X-Auth-Token", tok, "X-OpenStack-Ironic-API-Version", publicapi.MaxVersion.String())
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.CloseAll(clients)
	get := func(c *loadgen.Client, i int) error {
		status, err := c.Do(http.MethodGet, path(i), nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET %s: status %d", path(i), status)
		}
		return err
	}
	loadgen.Load{Requests: min(requests, 500)}.Run(clients, get) // warm-up: connections, plans, caches
	var rps, p50, p99 []float64
	for range benchRounds {
		res := loadgen.Load{Requests: requests}.Run(clients, get)
		if res.FirstErr != nil {
			b.Fatal(res.FirstErr)
		}
		rps = append(rps, res.PerSecond())
		p50 = append(p50, res.Percentile(0.50))
		p99 = append(p99, res.Percentile(0.99))
	}
	b.ReportMetric(loadgen.Median(rps), "rps")
	b.ReportMetric(loadgen.Median(p50), "p50-ms")
	b.ReportMetric(loadgen.Median(p99), "p99-ms")
	b.ReportMetric(slices.Max(p99), "p99-worst-ms")
}
