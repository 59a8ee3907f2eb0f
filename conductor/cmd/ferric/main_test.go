package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDriversCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"drivers"}, envOf(), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^fake\s+yes\s`).MatchString(out.String()) {
		t.Errorf("fake not listed as enabled:\n%s", out.String())
	}
	out.Reset()
	err := run(context.Background(), []string{"drivers"}, envOf("FERRIC_ENABLED_DRIVERS", "fake,warp"), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown driver "warp"`) {
		t.Errorf("unknown driver: %v", err)
	}
}

func TestTokenCommand(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte(token.NewKeyLine("k1")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"token", "--role", "member", "--ttl", "1h", "-operator-keys-file", keyFile}, envOf(), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := token.LoadKeys(keyFile)
	claims, err := keys.Verify(strings.TrimSpace(out.String()), "ferric", token.AudiencePublic, time.Now())
	if err != nil || claims.Role != "member" {
		t.Fatalf("minted token does not verify as member: %v %+v", err, claims)
	}
	if ttl := claims.ExpiresAt.Sub(claims.IssuedAt.Time); ttl != time.Hour {
		t.Errorf("ttl %s", ttl)
	}
	for _, args := range [][]string{
		{"token", "--role", "root", "-operator-keys-file", keyFile},
		{"token", "--ttl", "-1h", "-operator-keys-file", keyFile},
		{"token"},
	} {
		if err := run(context.Background(), args, envOf(), io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	url := pgtest.URL(t)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, envOf("FERRIC_DATABASE_URL", url), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied 0 migration(s)") {
		t.Errorf("on a migrated database: %q", out.String())
	}
	if err := run(context.Background(), []string{"version"}, envOf(), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, envOf(), io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
}

// TestDevStack is `make run`, twice: build the programs, start the stack
// with its private PostgreSQL, use both APIs, stop with SIGINT, and again
// on the same state directory.
func TestDevStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole stack")
	}
	bin := t.TempDir()
	for name, pkg := range map[string]string{
		"ferric-public-api": "../../../public-api", "ferric-agent-api": "../../../agent-api",
		"ferric-conductor": "../ferric-conductor", "ferric": ".",
	} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	state := filepath.Join(t.TempDir(), "state")
	publicAddr, agentAddr := freeAddr(t), freeAddr(t)
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(filepath.Join(bin, "ferric"), "dev", "-state-dir", state, "-bin-dir", bin)
		cmd.Env = append(os.Environ(), "FERRIC_DATABASE_URL=", "FERRIC_PUBLIC_LISTEN="+publicAddr, "FERRIC_AGENT_LISTEN="+agentAddr, "FERRIC_FAST_TRACK=true")
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tok := waitForToken(t, stdout)
		go func() { _, _ = io.Copy(io.Discard, stdout) }()

		req, _ := http.NewRequest("POST", "http://"+publicAddr+"/v1/nodes", strings.NewReader(`{"driver": "fake"}`))
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("round %d: create node: %v %v", round, err, resp)
		}
		resp.Body.Close()
		req, _ = http.NewRequest("GET", "http://"+publicAddr+"/v1/nodes", nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := strings.Count(string(body), `"provision_state"`); n != round {
			t.Errorf("round %d: %d nodes listed, want %d (data kept between runs)", round, n, round)
		}
		if resp, err := http.Get("http://" + agentAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("round %d: agent API: %v", round, err)
		}

		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: ferric dev exited with %v", round, err)
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: ferric dev did not stop", round)
		}
		if resp, err := http.Get("http://" + publicAddr + "/healthz"); err == nil {
			resp.Body.Close()
			t.Fatalf("round %d: the public API still answers after stop", round)
		}
	}
}

func waitForToken(t *testing.T, r io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if _, tok, ok := strings.Cut(sc.Text(), "OS_TOKEN="); ok {
				found <- strings.Fields(tok)[0]
				return
			}
		}
		close(found)
	}()
	select {
	case tok, ok := <-found:
		if !ok {
			t.Fatal("ferric dev ended without printing a token")
		}
		return tok
	case <-time.After(90 * time.Second):
		t.Fatal("ferric dev did not become ready")
	}
	return ""
}

// TestDevRefusesASecondRun: two dev stacks on one state folder would share
// (and one would stop) the same PostgreSQL.
func TestDevRefusesASecondRun(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockStateDir(dir); err == nil || !strings.Contains(err.Error(), "another `make run`") {
		t.Fatalf("a second run on the same folder: %v", err)
	}
	unlock()
	again, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
	again()
}
