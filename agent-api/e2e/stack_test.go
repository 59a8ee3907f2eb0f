package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/syncbuf"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

// programs are built once per test run, without the race detector (the
// tests' own process has it), into binDir.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

var programs = map[string]string{
	"ferric-public-api": "./public-api",
	"ferric-agent-api":  "./agent-api",
	"ferric-conductor":  "./conductor/cmd/ferric-conductor",
	"ferric-agent":      "./agent-api/ferric-agent",
}

func build(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the programs")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferric-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		for name, pkg := range programs {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// stack is one Ferric installation: its database, keys, and the programs
// running on loopback.
type stack struct {
	t         testing.TB
	dbURL     string
	bin       string
	dir       string
	env       []string
	publicURL string
	agentURL  string
	client    *gophercloud.ServiceClient
	logs      *syncbuf.Buffer // every program's log

	mu    sync.Mutex
	procs map[string]*process
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// stackOptions are settings beyond the defaults every stack has.
type stackOptions struct {
	env []string // FERRIC_...=... for all programs
}

func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, bin: build(t), dir: t.TempDir(), logs: &syncbuf.Buffer{}, procs: map[string]*process{}}
	operatorKeys := filepath.Join(s.dir, "operator-keys")
	agentKeys := filepath.Join(s.dir, "agent-keys")
	for path, kid := range map[string]string{operatorKeys: "op1", agentKeys: "ag1"} {
		if err := os.WriteFile(path, []byte(token.NewKeyLine(kid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.dbURL = pgtest.URL(t)
	publicAddr, agentAddr := freeAddr(t), freeAddr(t)
	s.publicURL, s.agentURL = "http://"+publicAddr, "http://"+agentAddr
	s.env = append(os.Environ(),
		"FERRIC_DATABASE_URL="+s.dbURL,
		"FERRIC_OPERATOR_KEYS_FILE="+operatorKeys,
		"FERRIC_AGENT_KEYS_FILE="+agentKeys,
		"FERRIC_PUBLIC_LISTEN="+publicAddr,
		"FERRIC_AGENT_LISTEN="+agentAddr,
		"FERRIC_ENABLED_DRIVERS=fake,redfish",
		"FERRIC_AGENT_CHECKIN_INTERVAL=1s",
		"FERRIC_AGENT_RATE_LIMIT=0", // every simulated agent comes from 127.0.0.1
		"FERRIC_POWER_SYNC_INTERVAL=0",
		"FERRIC_LOG_FORMAT=json",
		"FERRIC_LOG_LEVEL=info",
	)
	s.env = append(s.env, opts.env...)
	s.start("ferric-public-api", "ferric-public-api")
	s.start("ferric-agent-api", "ferric-agent-api")
	s.start("ferric-conductor", "ferric-conductor", "FERRIC_CONDUCTOR_NAME=conductor-1")
	s.waitReady(s.publicURL + "/readyz")
	s.waitReady(s.agentURL + "/healthz")

	keys, err := token.LoadKeys(operatorKeys)
	if err != nil {
		t.Fatal(err)
	}
	claims := token.Claims{Role: "admin"}
	claims.Subject = "e2e"
	tok, err := keys.Mint(claims, "ferric", token.AudiencePublic, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.client, err = noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: s.publicURL + "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	s.client.ProviderClient.TokenID = tok
	s.client.Microversion = "1.81"
	t.Cleanup(s.stopAll)
	s.waitConductor()
	return s
}

// waitConductor waits until a conductor has registered: before that, an
// operator's provisioning request is refused (no conductor for the driver).
func (s *stack) waitConductor() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, s.publicURL+"/v1/conductors", nil)
		req.Header.Set("X-Auth-Token", s.client.ProviderClient.TokenID)
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var body struct {
				Conductors []struct {
					Alive bool `json:"alive"`
				} `json:"conductors"`
			}
			err := json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && len(body.Conductors) > 0 && body.Conductors[0].Alive {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("no conductor registered within 60 s; logs:\n%s", tail(s.logs.String(), 100))
}

// start runs a program as name with extra environment.
func (s *stack) start(name, program string, env ...string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, program))
	cmd.Env = append(append([]string(nil), s.env...), env...)
	prefix := &prefixWriter{name: name, w: s.logs}
	cmd.Stdout, cmd.Stderr = prefix, prefix
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { // ends when the process exits; stopAll makes sure it does
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
}

// kill sends SIGKILL to a program and waits for it to die.
func (s *stack) kill(name string) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (s *stack) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = map[string]*process{}
	s.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for name, p := range procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			s.t.Errorf("%s did not stop within 20 s of SIGTERM", name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.t.Failed() {
		s.t.Logf("programs' logs:\n%s", tail(s.logs.String(), 400))
	}
}

func (s *stack) waitReady(url string) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s not ready after 60 s; logs:\n%s", url, tail(s.logs.String(), 100))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// prefixWriter prefixes each line a program writes with its name.
type prefixWriter struct {
	name string
	w    *syncbuf.Buffer
	mu   sync.Mutex
	part []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := strings.IndexByte(string(p.part), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s: %s\n", p.name, p.part[:i])
		p.part = p.part[i+1:]
	}
	return len(b), nil
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// eventually polls cond until it holds or the deadline passes; the
// deadlines are generous because CI machines are shared and slow under
// the race detector.
func eventually(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v; last seen: %s", what, within, last)
}
