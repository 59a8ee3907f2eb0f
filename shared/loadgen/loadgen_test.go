package loadgen_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/shared/loadgen"
)

// TestClientAndLoad checks what a benchmark relies on: every request
// reaches the server with the client's and the request's headers and its
// body over one connection per client, statuses come back, errors are
// counted, and a latency is recorded per request.
func TestClientAndLoad(t *testing.T) {
	var served, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Header.Get("X-Fixed") != "f" || r.Header.Get("X-Each") != r.URL.Query().Get("i"):
			w.WriteHeader(http.StatusBadRequest)
		case r.Method == http.MethodPost && string(body) != `{"i": `+r.URL.Query().Get("i")+`}`:
			w.WriteHeader(http.StatusUnprocessableEntity)
		case r.URL.Query().Get("i") == "7":
			w.WriteHeader(http.StatusTeapot)
		default:
			fmt.Fprint(w, `{"ok": true}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	clients, err := loadgen.DialN(4, srv.URL, "X-Fixed", "f")
	if err != nil {
		t.Fatal(err)
	}
	defer loadgen.CloseAll(clients)
	res := loadgen.Load{Requests: 40}.Run(clients, func(c *loadgen.Client, i int) error {
		method, body := http.MethodGet, []byte(nil)
		if i%2 == 1 {
			method, body = http.MethodPost, fmt.Appendf(nil, `{"i": %d}`, i)
		}
		status, err := c.Do(method, fmt.Sprintf("/x?i=%d", i), body, "X-Each", fmt.Sprint(i))
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("request %d: status %d", i, status)
		}
		return err
	})
	if len(res.Latencies) != 40 || served.Load() != 40 {
		t.Fatalf("%d latencies, %d served; want 40 of each", len(res.Latencies), served.Load())
	}
	if res.Errors != 1 || res.FirstErr == nil {
		t.Fatalf("%d errors (%v); want the one teapot", res.Errors, res.FirstErr)
	}
	if conns.Load() != 4 {
		t.Fatalf("%d connections; want one per client", conns.Load())
	}
	if res.Percentile(0) <= 0 || res.Percentile(1) < res.Percentile(0.5) {
		t.Fatalf("percentiles %v, %v: not measured", res.Percentile(0), res.Percentile(1))
	}
}

// TestPacedLoad checks that a paced load sends at its rate: about rate x
// duration requests, not as many as the server could answer.
func TestPacedLoad(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	clients, err := loadgen.DialN(2, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer loadgen.CloseAll(clients)
	res := loadgen.Load{Duration: 500 * time.Millisecond, Rate: 40}.Run(clients, func(c *loadgen.Client, i int) error {
		_, err := c.Do(http.MethodGet, "/", nil)
		return err
	})
	if n := len(res.Latencies); n < 15 || n > 25 {
		t.Fatalf("%d requests in 0.5 s at 40/s; want about 20", n)
	}
}

func TestMedian(t *testing.T) {
	if m := loadgen.Median([]float64{5, 1, 3}); m != 3 {
		t.Fatalf("median %v, want 3", m)
	}
	if m := loadgen.Median(nil); m != 0 {
		t.Fatalf("median of nothing %v, want 0", m)
	}
}
