// Package loadgen is the load generator of Ferric's benchmarks: clients on
// kept-alive HTTP/1.1 connections that send prepared requests, driven
// either as fast as the server answers or at a fixed rate, and the latency
// figures the benchmarks report.
//
// Its clients cost a fraction of what net/http's Client does (no
// goroutines per connection, no header maps), because the benchmarks run
// the load generator on the same two cores as the server they measure.
package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one kept-alive connection. It is not safe for concurrent use:
// each load goroutine has its own.
type Client struct {
	conn   net.Conn
	r      *bufio.Reader
	host   string
	header string // sent with every request
	buf    []byte
}

// Dial connects to the server at base (http://host:port) and returns a
// client that sends header with every request: name, value pairs.
func Dial(base string, header ...string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), host: u.Host}
	for i := 0; i+1 < len(header); i += 2 {
		c.header += header[i] + ": " + header[i+1] + "\r\n"
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends one request, with extra headers (name, value pairs) besides the
// client's, reads the whole response and returns its status. The response
// must come within 30 seconds.
func (c *Client) Do(method, path string, body []byte, header ...string) (int, error) {
	b := append(c.buf[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\n"...)
	b = append(b, c.header...)
	for i := 0; i+1 < len(header); i += 2 {
		b = append(b, header[i]...)
		b = append(b, ": "...)
		b = append(b, header[i+1]...)
		b = append(b, "\r\n"...)
	}
	if body != nil {
		b = fmt.Appendf(b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	c.buf = b
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	if _, err := c.conn.Write(b); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// DialN dials n clients, closing them all when one fails.
func DialN(n int, base string, header ...string) ([]*Client, error) {
	clients := make([]*Client, 0, n)
	for range n {
		c, err := Dial(base, header...)
		if err != nil {
			CloseAll(clients)
			return nil, err
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// CloseAll closes every client.
func CloseAll(clients []*Client) {
	for _, c := range clients {
		_ = c.Close()
	}
}

// Load says how to drive the clients.
type Load struct {
	// Requests ends the load after that many requests; otherwise Duration
	// ends it.
	Requests int
	Duration time.Duration
	// Rate paces the clients together at that many requests a second; a
	// request's latency then counts from when it was due, so that a stall
	// cannot hide the requests queued behind it. 0: each client sends its
	// next request as soon as the last is answered.
	Rate float64
}

// Result is what one load measured.
type Result struct {
	Latencies []time.Duration // sorted
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
}

// Run drives every client with op (which sends request number i and returns
// an error when its answer is not the expected one) and measures each
// request's latency.
func (l Load) Run(clients []*Client, op func(c *Client, i int) error) Result {
	var (
		mu  sync.Mutex
		res Result
		wg  sync.WaitGroup
	)
	var counter atomic.Int64
	start := time.Now()
	deadline := start.Add(l.Duration)
	for k, c := range clients {
		wg.Add(1)
		go func() { // ends when the load is over
			defer wg.Done()
			var lat []time.Duration
			errs := 0
			var firstErr error
			for round := 0; ; round++ {
				due := time.Now()
				if l.Rate > 0 {
					due = start.Add(time.Duration(float64(round*len(clients)+k) / l.Rate * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				i := int(counter.Add(1) - 1)
				if (l.Requests > 0 && i >= l.Requests) || (l.Requests == 0 && due.After(deadline)) {
					break
				}
				if err := op(c, i); err != nil {
					errs++
					firstErr = cmpOr(firstErr, err)
				}
				lat = append(lat, time.Since(due))
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Errors += errs
			res.FirstErr = cmpOr(res.FirstErr, firstErr)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	return res
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// PerSecond is the requests answered per second.
func (r Result) PerSecond() float64 { return float64(len(r.Latencies)) / r.Elapsed.Seconds() }

// Percentile returns the p-th percentile latency (p in [0, 1]) in
// milliseconds.
func (r Result) Percentile(p float64) float64 {
	if len(r.Latencies) == 0 {
		return 0
	}
	return float64(r.Latencies[int(p*float64(len(r.Latencies)-1))]) / float64(time.Millisecond)
}

// Median returns the median of xs (the upper one of an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
