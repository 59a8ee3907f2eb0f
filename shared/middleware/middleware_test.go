package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/middleware"
	"github.com/ferric-metal/ferric/shared/syncbuf"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// TestAdmitServesInArrivalOrder holds the only slot, queues requests one
// after the other, and checks that they run in the order they came.
func TestAdmitServesInArrivalOrder(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var order []string
	r := gin.New()
	r.GET("/:id", middleware.Admit(1, time.Minute), func(c *gin.Context) {
		if c.Param("id") == "first" {
			close(entered)
			<-release
		}
		mu.Lock()
		order = append(order, c.Param("id"))
		mu.Unlock()
		c.Status(http.StatusNoContent)
	})
	var wg sync.WaitGroup
	get := func(id string) {
		defer wg.Done()
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/"+id, nil))
		if w.Code != http.StatusNoContent {
			t.Errorf("%s: status %d", id, w.Code)
		}
	}
	wg.Add(1)
	go get("first")
	<-entered
	want := []string{"first"}
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		wg.Add(1)
		go get(id)
		want = append(want, id)
		waitFor(t, func() bool { return waitingForAdmission() == i+1 }) // queued before the next comes
	}
	close(release)
	wg.Wait()
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("served in order %v, want %v", order, want)
	}
}

// waitingForAdmission counts the goroutines waiting in Admit for a slot.
func waitingForAdmission() int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		// The closure's name carries its caller's when it is inlined.
		if strings.Contains(g, "[select") && strings.Contains(g, ".Admit.func") {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestAdmitBusy checks that a request that waits longer than maxWait gets
// 503 in Ironic's format with Retry-After, and never reaches the handler.
func TestAdmitBusy(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	r := gin.New()
	r.GET("/", middleware.Admit(1, 50*time.Millisecond), func(c *gin.Context) {
		calls++
		if calls == 1 {
			close(entered)
			<-release
		}
		c.Status(http.StatusNoContent)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get(srv.URL); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(release)
	<-done
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("status %d, Retry-After %q; want 503 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var e struct {
		ErrorMessage string `json:"error_message"`
	}
	if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.ErrorMessage, "busy") {
		t.Fatalf("body %s is not an Ironic error saying the API is busy", body)
	}
	if calls != 1 {
		t.Fatalf("handler ran %d times, want 1", calls)
	}
}

// TestAdmitClientGone checks that a waiting request whose client gives up
// leaves the queue without running.
func TestAdmitClientGone(t *testing.T) {
	admit := middleware.Admit(1, time.Minute)
	ran := false
	r := gin.New()
	r.GET("/", admit, func(c *gin.Context) { ran = true })

	// Another route behind the same gate holds the only slot.
	entered, release := make(chan struct{}), make(chan struct{})
	holdDone := make(chan struct{})
	go func() {
		defer close(holdDone)
		r2 := gin.New()
		r2.GET("/", admit, func(*gin.Context) { close(entered); <-release })
		r2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	close(release)
	<-holdDone
	if ran || w.Code != http.StatusServiceUnavailable {
		t.Fatalf("ran=%v status=%d; want the handler skipped and 503", ran, w.Code)
	}
}

// TestReadBody checks the cap (declared and undeclared lengths) and that
// the handler reads the body from memory.
func TestReadBody(t *testing.T) {
	var got []byte
	r := gin.New()
	r.POST("/", middleware.ReadBody(16), func(c *gin.Context) {
		got, _ = io.ReadAll(c.Request.Body)
		c.Status(http.StatusNoContent)
	})
	cases := []struct {
		name   string
		body   io.Reader
		length int64
		want   int
	}{
		{"fits", strings.NewReader(`{"a": 1}`), 8, http.StatusNoContent},
		{"declared too large", strings.NewReader(strings.Repeat("x", 17)), 17, http.StatusRequestEntityTooLarge},
		{"chunked too large", io.MultiReader(strings.NewReader(strings.Repeat("x", 40))), -1, http.StatusRequestEntityTooLarge},
		{"chunked fits", io.MultiReader(strings.NewReader("0123456789")), -1, http.StatusNoContent},
		{"invalid UTF-8", strings.NewReader("{\"a\": \"\xff\"}"), 9, http.StatusBadRequest},
		{"lone surrogate", strings.NewReader(`{"a": "\ud800"}`), 15, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			req := httptest.NewRequest(http.MethodPost, "/", tc.body)
			req.ContentLength = tc.length
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.want, w.Body)
			}
			if tc.want == http.StatusNoContent && len(got) == 0 {
				t.Fatal("the handler read no body")
			}
			if tc.want != http.StatusNoContent && got != nil {
				t.Fatal("the handler ran")
			}
		})
	}
}

// TestReadBodyBeforeAdmission checks that a client still sending its body
// holds no admission slot: with one slot, a second request is served while
// the first one's body is incomplete.
func TestReadBodyBeforeAdmission(t *testing.T) {
	r := gin.New()
	r.POST("/", middleware.ReadBody(1<<20), middleware.Admit(1, 100*time.Millisecond), func(c *gin.Context) {
		c.Status(http.StatusNoContent)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	slowBody, finish := io.Pipe()
	slowDone := make(chan int)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, slowBody)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slowDone <- 0
			return
		}
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()
	if _, err := finish.Write([]byte(`{"slow": `)); err != nil { // the server now reads a partial body
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("second request: status %d, want 204 while the first is still sending", resp.StatusCode)
	}
	_, _ = finish.Write([]byte(`1}`))
	finish.Close()
	if status := <-slowDone; status != http.StatusNoContent {
		t.Fatalf("slow request: status %d, want 204", status)
	}
}

// TestAccessLogNamesTheClient checks that the access log names the client
// an X-Forwarded-For from a trusted proxy gives, and the proxy beside it,
// and that the header is ignored from any other peer.
func TestAccessLogNamesTheClient(t *testing.T) {
	for _, tc := range []struct {
		name      string
		trusted   []string
		wantFrom  string
		wantProxy string
	}{
		{"trusted proxy", []string{"192.0.2.0/24"}, "10.20.0.5", "192.0.2.1"},
		{"untrusted peer", nil, "192.0.2.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := gin.New()
			r.RemoteIPHeaders = []string{"X-Forwarded-For"}
			if err := r.SetTrustedProxies(tc.trusted); err != nil {
				t.Fatal(err)
			}
			r.Use(middleware.AccessLog(slog.New(slog.NewJSONHandler(&out, nil))))
			r.GET("/", func(c *gin.Context) { c.Status(http.StatusNoContent) })
			req := httptest.NewRequest(http.MethodGet, "/", nil) // from 192.0.2.1
			req.Header.Set("X-Forwarded-For", "10.20.0.5")
			r.ServeHTTP(httptest.NewRecorder(), req)
			var line struct {
				Remote string `json:"remote"`
				Proxy  string `json:"proxy"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(out.Bytes(), &line); err != nil {
				t.Fatalf("log line %q: %v", out.String(), err)
			}
			if line.Remote != tc.wantFrom || line.Proxy != tc.wantProxy || line.Status != http.StatusNoContent {
				t.Fatalf("logged remote %q proxy %q status %d; want %q, %q, 204", line.Remote, line.Proxy, line.Status, tc.wantFrom, tc.wantProxy)
			}
		})
	}
}

// TestAccessLogSamplesRefusals: of a flood of 429s, one line per interval
// is written; every other request is logged one by one.
func TestAccessLogSamplesRefusals(t *testing.T) {
	lines := floodLog(t, time.Hour, 5000)
	if lines.refusals != 1 || lines.served != 1 {
		t.Errorf("%d refusal lines and %d served lines for 5,000 refusals and one served request within the interval; want 1 and 1",
			lines.refusals, lines.served)
	}
}

// TestAccessLogCountsEveryRefusal: the refusal lines' counts, with the count
// the next request flushes, add up to every refusal.
func TestAccessLogCountsEveryRefusal(t *testing.T) {
	lines := floodLog(t, time.Nanosecond, 5000)
	if lines.counted != 5000 {
		t.Errorf("the lines count %d refusals, want all 5000", lines.counted)
	}
}

type floodLines struct{ refusals, served, counted int }

// floodLog sends refused requests from 8 goroutines, then one served
// request, through an access log sampling at interval, and reads its lines.
func floodLog(t *testing.T, interval time.Duration, refused int) floodLines {
	t.Helper()
	var out syncbuf.Buffer
	r := gin.New()
	r.Use(middleware.SampledAccessLog(slog.New(slog.NewJSONHandler(&out, nil)), interval))
	r.GET("/refused", func(c *gin.Context) { c.Status(http.StatusTooManyRequests) })
	r.GET("/ok", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	serve := func(path string) { r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil)) }
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range refused / 8 {
				serve("/refused")
			}
		}()
	}
	wg.Wait()
	serve("/ok")
	var got floodLines
	for _, text := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var line struct {
			Msg      string `json:"msg"`
			Status   int    `json:"status"`
			Before   int    `json:"unlogged_before"`
			Unlogged int    `json:"unlogged"`
		}
		if err := json.Unmarshal([]byte(text), &line); err != nil {
			t.Fatalf("log line %q: %v", text, err)
		}
		switch {
		case line.Status == http.StatusTooManyRequests && line.Msg == "request":
			got.refusals++
			got.counted += 1 + line.Before
		case line.Status == http.StatusTooManyRequests:
			got.counted += line.Unlogged
		case line.Status == http.StatusNoContent:
			got.served++
		}
	}
	return got
}
