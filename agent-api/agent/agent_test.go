package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/hwinventory"
)

func TestParseKernelCmdline(t *testing.T) {
	got := ParseKernelCmdline(`BOOT_IMAGE=/vmlinuz root=/dev/ram0 ferric.api=https://10.0.2.2:6386 quiet ` +
		`ferric.ca="/etc/ferric/ca.pem" BOOTIF=01-52-54-00-12-34-56 ferric.api=https://agents.example:6386` + "\n")
	want := KernelParams{APIURL: "https://agents.example:6386", CAFile: "/etc/ferric/ca.pem", BootMAC: "01-52-54-00-12-34-56"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := ParseKernelCmdline("ro quiet"); got != (KernelParams{}) {
		t.Errorf("a command line without the agent's parameters gave %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range []string{"", "ftp://x", "http://", "https://user:secret@agents.example"} {
		err := Config{APIURL: bad}.Validate()
		if err == nil {
			t.Errorf("URL %q accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("the error prints the password: %v", err)
		}
	}
	if err := (Config{APIURL: "https://agents.example:6386"}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (Config{APIURL: "https://a", CAFile: "/nonexistent/ca.pem"}).Validate(); err == nil {
		t.Error("a missing CA bundle accepted")
	}
}

// fixedMachine is a machine whose facts never change and whose power
// commands are counted.
type fixedMachine struct {
	mu        sync.Mutex
	powerOffs int
}

func (m *fixedMachine) Machine(context.Context) (*hwinventory.Machine, error) {
	return &hwinventory.Machine{Inventory: agentwire.Inventory{
		Interfaces: []agentwire.Interface{{Name: "eth0", MACAddress: "52:54:00:00:00:01"}},
	}}, nil
}

func (m *fixedMachine) PowerOff() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.powerOffs++
	return errSimulatedPower
}

func (m *fixedMachine) Reboot() error { return m.PowerOff() }

// scriptedAPI answers lookups and checkins from scripts: each entry is one
// answer, the last repeats. It records what the agent sent.
type scriptedAPI struct {
	mu       sync.Mutex
	lookups  []answer
	checkins []answer
	seen     []string // "lookup" or "checkin <token> <last_command>"
	nLookup  int
	nCheckin int
}

type answer struct {
	status     int
	body       string
	retryAfter string
	hangUp     bool // close the connection without answering
}

func (s *scriptedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var a answer
	switch r.URL.Path {
	case agentwire.LookupPath:
		var inv agentwire.Inventory
		if err := json.NewDecoder(r.Body).Decode(&inv); err != nil || len(inv.Interfaces) == 0 {
			s.mu.Unlock()
			http.Error(w, "bad inventory", 400)
			return
		}
		a = s.lookups[min(s.nLookup, len(s.lookups)-1)]
		s.nLookup++
		s.seen = append(s.seen, "lookup")
	case agentwire.CheckinPath:
		var req agentwire.CheckinRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		last := "-"
		if req.LastCommand != nil {
			last = req.LastCommand.Name + "/" + req.LastCommand.Status
		}
		a = s.checkins[min(s.nCheckin, len(s.checkins)-1)]
		s.nCheckin++
		s.seen = append(s.seen, fmt.Sprintf("checkin %s %s %s", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), req.Status, last))
	}
	s.mu.Unlock()
	if a.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (s *scriptedAPI) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func lookupAnswer(token string) answer {
	return answer{status: 200, body: fmt.Sprintf(`{"node_uuid": "c55a9fde-56e0-48a6-8f72-853b47d3870e", "token": %q, "checkin_interval": 1, "node": {"uuid": "c55a9fde-56e0-48a6-8f72-853b47d3870e", "provision_state": "inspect wait"}}`, token)}
}

func checkinAnswer(action, token string) answer {
	body := fmt.Sprintf(`{"action": %q, "args": {}, "checkin_interval": 1}`, action)
	if token != "" {
		body = fmt.Sprintf(`{"action": %q, "args": {}, "checkin_interval": 1, "token": %q}`, action, token)
	}
	return answer{status: 200, body: body}
}

func fault(status int, msg string) answer {
	inner, _ := json.Marshal(map[string]string{"faultstring": msg, "faultcode": "Client"})
	outer, _ := json.Marshal(map[string]string{"error_message": string(inner)})
	return answer{status: status, body: string(outer)}
}

func testAgent(t *testing.T, api http.Handler, hw Hardware) (*Agent, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, nil))
	}
	a := New(Config{APIURL: srv.URL, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		RequestTimeout: 2 * time.Second, PowerOffPause: 10 * time.Millisecond}, srv.Client(), hw, log)
	return a, srv
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runUntil runs the agent until cond holds on what the API saw, or fails
// after a generous deadline.
func runUntil(t *testing.T, a *Agent, api *scriptedAPI, cond func([]string) bool) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		if seen = api.log(); cond(seen) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if !cond(seen) {
		t.Fatalf("the agent never got there; the API saw:\n%s", strings.Join(seen, "\n"))
	}
	return seen
}

func contains(seen []string, want string) bool {
	for _, s := range seen {
		if s == want {
			return true
		}
	}
	return false
}

// TestLoopSurvivesRefusals: lookups refused every way an agent API or a
// network can refuse them, then a masked token, then a token; checkins
// refused with 409, 429, 503 and a cut connection; an inspect command run,
// reported running and then success; a renewed token adopted; a revoked
// token sending the agent back to lookup.
func TestLoopSurvivesRefusals(t *testing.T) {
	api := &scriptedAPI{
		lookups: []answer{
			{hangUp: true},
			fault(503, "busy"),
			fault(429, "slow down"),
			fault(404, "Node could not be found."),
			lookupAnswer(agentwire.MaskedToken),
			lookupAnswer("token-1"),
		},
		checkins: []answer{
			fault(409, "Node is locked by conductor"),
			{status: 429, body: `{}`, retryAfter: "0"},
			fault(503, "agent queue full"),
			{hangUp: true},
			checkinAnswer(agentwire.ActionInspect, ""), // inspect: one more lookup, then success
			checkinAnswer(agentwire.ActionWait, "token-2"),
			checkinAnswer(agentwire.ActionWait, ""),
			fault(401, "Invalid or missing agent token."),
		},
	}
	a, _ := testAgent(t, api, &fixedMachine{})
	seen := runUntil(t, a, api, func(seen []string) bool {
		n := 0
		for _, s := range seen {
			if s == "lookup" {
				n++
			}
		}
		return n >= 8 // six to get a token, the inspect's, and one after the 401
	})
	if !contains(seen, "checkin token-2 idle inspect/success") {
		t.Errorf("the renewed token was not used, or the inspection's success not reported:\n%s", strings.Join(seen, "\n"))
	}
	first := -1
	for i, s := range seen {
		if strings.HasPrefix(s, "checkin") && first < 0 {
			first = i
		}
	}
	if first != 6 {
		t.Errorf("the agent checked in before it had a token (first checkin at %d):\n%s", first, strings.Join(seen, "\n"))
	}
	for _, s := range seen {
		if strings.HasPrefix(s, "checkin "+agentwire.MaskedToken) {
			t.Errorf("the agent used the masked token: %s", s)
		}
	}
}

// TestPowerOffEndsTheBoot: told to power off, a simulated machine logs, and
// its agent starts a new boot with a lookup.
func TestPowerOffEndsTheBoot(t *testing.T) {
	api := &scriptedAPI{
		lookups:  []answer{lookupAnswer("token-1")},
		checkins: []answer{checkinAnswer(agentwire.ActionPowerOff, "")},
	}
	hw := &fixedMachine{}
	a, _ := testAgent(t, api, hw)
	runUntil(t, a, api, func(seen []string) bool { return len(seen) >= 4 })
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.powerOffs == 0 {
		t.Error("the machine was not powered off")
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	b := backoff{min: time.Second, max: 8 * time.Second}
	var last time.Duration
	distinct := map[time.Duration]bool{}
	for i := range 50 {
		d := b.next()
		if d > 8*time.Second || d < 500*time.Millisecond {
			t.Fatalf("step %d: %v outside [0.5 s, 8 s]", i, d)
		}
		distinct[d] = true
		last = d
	}
	if last < 4*time.Second {
		t.Errorf("after 50 steps the back-off is %v, not near its bound", last)
	}
	if len(distinct) < 10 {
		t.Errorf("only %d distinct delays in 50: no jitter", len(distinct))
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Errorf("after reset the first delay is %v", d)
	}
}

func TestErrorsNameTheFault(t *testing.T) {
	api := &scriptedAPI{lookups: []answer{fault(404, "Node could not be found.")}}
	a, _ := testAgent(t, api, &fixedMachine{})
	m, _ := (&fixedMachine{}).Machine(context.Background())
	_, err := a.api.Lookup(context.Background(), &m.Inventory)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "Node could not be found." {
		t.Errorf("got %#v", err)
	}
}
