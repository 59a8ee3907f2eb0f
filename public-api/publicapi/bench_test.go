package publicapi_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/public-api/publicapi"
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
	clients := make([]*keepAliveClient, benchClients)
	for k := range clients {
		c, err := dialKeepAlive(base, tok)
		if err != nil {
			b.Fatal(err)
		}
		defer c.conn.Close()
		clients[k] = c
	}
	latencies := make([]time.Duration, requests)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	work := func(n int) time.Duration {
		next.Store(0)
		var wg sync.WaitGroup
		start := time.Now()
		for _, c := range clients {
			wg.Add(1)
			go func() { // ends when the n requests are sent, or at an error
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					t0 := time.Now()
					if err := c.get(path(i)); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					latencies[i] = time.Since(t0)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	work(min(requests, 500)) // warm-up: connections, plans, caches
	var rps, p50, p99 []float64
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for range benchRounds {
		elapsed := work(requests)
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		slices.Sort(latencies)
		rps = append(rps, float64(requests)/elapsed.Seconds())
		p50 = append(p50, ms(latencies[requests/2]))
		p99 = append(p99, ms(latencies[requests*99/100]))
	}
	b.ReportMetric(median(rps), "rps")
	b.ReportMetric(median(p50), "p50-ms")
	b.ReportMetric(median(p99), "p99-ms")
	b.ReportMetric(slices.Max(p99), "p99-worst-ms")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// keepAliveClient is the load generator's HTTP/1.1 client: one kept-alive
// connection, requests written from prepared bytes, responses read with
// net/http's parser. It costs a fraction of an http.Client, whose
// per-connection goroutines would otherwise take a good part of the two
// cores the server is measured on.
type keepAliveClient struct {
	conn   net.Conn
	r      *bufio.Reader
	suffix []byte // the request after its path: version and headers
	buf    []byte
}

func dialKeepAlive(base, tok string) (*keepAliveClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	suffix := fmt.Appendf(nil, " HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\nX-OpenStack-Ironic-API-Version: %s\r\n\r\n",
		u.Host, tok, publicapi.MaxVersion)
	return &keepAliveClient{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), suffix: suffix}, nil
}

func (c *keepAliveClient) get(path string) error {
	c.buf = append(append(append(c.buf[:0], "GET "...), path...), c.suffix...)
	if _, err := c.conn.Write(c.buf); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return err
}
