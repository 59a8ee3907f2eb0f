package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lib/pq"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/pgcluster"
	"github.com/ferric-metal/ferric/shared/token"
)

// dev runs a local stack: a private PostgreSQL under .ferric/ (unless
// FERRIC_DATABASE_URL is set), the schema, token keys, both APIs and a
// conductor from bin/. It prints how to reach them and stops everything it
// started on Ctrl-C. Data is kept between runs.
func dev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferric dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", ".ferric", "folder for the private database and keys")
	binDir := fs.String("bin-dir", "bin", "folder holding the Ferric programs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	state, err := filepath.Abs(*stateDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	unlock, err := lockStateDir(state)
	if err != nil {
		return err
	}
	defer unlock()

	dbURL := getenv("FERRIC_DATABASE_URL")
	if dbURL == "" {
		fmt.Fprintln(stdout, "Starting a private PostgreSQL in", filepath.Join(state, "pg"), "...")
		cluster, err := pgcluster.Start(ctx, filepath.Join(state, "pg"))
		if err != nil {
			return err
		}
		defer func() {
			if err := cluster.Stop(); err != nil {
				fmt.Fprintln(stderr, "stopping PostgreSQL:", err)
			}
		}()
		if err := ensureDatabase(ctx, cluster.URL("postgres"), "ferric"); err != nil {
			return err
		}
		dbURL = cluster.URL("ferric")
	}
	if err := migrateURL(ctx, dbURL); err != nil {
		return err
	}
	operatorKeys, err := ensureKeyFile(filepath.Join(state, "operator-keys"), "op1")
	if err != nil {
		return err
	}
	agentKeys, err := ensureKeyFile(filepath.Join(state, "agent-keys"), "ag1")
	if err != nil {
		return err
	}

	env := append(os.Environ(),
		"FERRIC_DATABASE_URL="+dbURL,
		"FERRIC_OPERATOR_KEYS_FILE="+operatorKeys,
		"FERRIC_AGENT_KEYS_FILE="+agentKeys,
	)
	publicListen := getenvDefault(getenv, "FERRIC_PUBLIC_LISTEN", "127.0.0.1:6385")
	agentListen := getenvDefault(getenv, "FERRIC_AGENT_LISTEN", "127.0.0.1:6386")

	procs := &children{}
	defer procs.stop(stderr)
	exited := make(chan string, 3)
	for _, prog := range []string{"ferric-public-api", "ferric-agent-api", "ferric-conductor"} {
		if err := procs.start(filepath.Join(*binDir, prog), env, stderr, exited); err != nil {
			return err
		}
	}
	// The agent API answers /healthz only; it reaches the database before
	// it serves.
	for _, url := range []string{"http://" + publicListen + "/readyz", "http://" + agentListen + "/healthz"} {
		if err := waitReady(ctx, url, exited); err != nil {
			return err
		}
	}

	keys, err := token.LoadKeys(operatorKeys)
	if err != nil {
		return err
	}
	claims := token.Claims{Role: "admin"}
	claims.Subject = "dev"
	tok, err := keys.Mint(claims, getenvDefault(getenv, "FERRIC_TOKEN_ISSUER", "ferric"), token.AudiencePublic, 12*time.Hour, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
Ferric is running. Press Ctrl-C to stop it.

  Operator API  http://%[1]s
  Agent API     http://%[2]s

An admin token, valid 12 hours (mint more with: bin/ferric token -operator-keys-file %[4]s -role reader):

  export OS_AUTH_TYPE=token_endpoint OS_ENDPOINT=http://%[1]s OS_TOKEN=%[3]s
  curl -s -H "X-Auth-Token: $OS_TOKEN" http://%[1]s/v1/nodes
  baremetal node create --driver fake --name demo-1

`, publicListen, agentListen, tok, operatorKeys)

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nStopping Ferric ...")
		return nil
	case prog := <-exited:
		return fmt.Errorf("%s exited unexpectedly; see its log above", prog)
	}
}

func getenvDefault(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	db, err := sql.Open("postgres", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // duplicate_database: a second run
		return nil
	}
	return err
}

func migrateURL(ctx context.Context, url string) error {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	return store.Migrate(ctx, db)
}

// ensureKeyFile creates a key file with one fresh key unless it exists.
func ensureKeyFile(path, kid string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, os.WriteFile(path, []byte(token.NewKeyLine(kid)+"\n"), 0o600)
}

// children are the programs dev started; stop ends them all.
type children struct{ procs []*child }

type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

func (c *children) start(path string, env []string, stderr io.Writer, exited chan<- string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s not found: run `make build` first (make run does)", path)
	}
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	ch := &child{cmd: cmd, done: make(chan struct{})}
	c.procs = append(c.procs, ch)
	name := filepath.Base(path)
	go func() { // ends when the child exits; stop makes sure it does
		_ = cmd.Wait()
		close(ch.done)
		select {
		case exited <- name:
		default: // nobody listens any more: we are stopping
		}
	}()
	return nil
}

func (c *children) stop(stderr io.Writer) {
	for _, ch := range c.procs {
		_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	}
	grace, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, ch := range c.procs {
		select {
		case <-ch.done:
		case <-grace.Done():
			fmt.Fprintln(stderr, "killing", ch.cmd.Path)
			_ = ch.cmd.Process.Kill()
			<-ch.done
		}
	}
}

func waitReady(ctx context.Context, url string, exited <-chan string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case prog := <-exited:
			return fmt.Errorf("%s exited during start-up; see its log above", prog)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after 60s", url)
}

// lockStateDir makes sure one `ferric dev` at a time uses a state folder: a
// second one would stop the first one's PostgreSQL (start-up stops a server
// left behind by a killed run). The lock is the kernel's (flock), so a
// killed run leaves none behind.
func lockStateDir(state string) (unlock func(), err error) {
	path := filepath.Join(state, "dev.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another `make run` (ferric dev) is using %s: stop it first, or give this one its own -state-dir", state)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
