package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func keyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(token.NewKeyLine("k1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartupRefusals(t *testing.T) {
	t.Parallel()
	keys := keyFile(t)
	base := map[string]string{"FERRIC_DATABASE_URL": "postgres://127.0.0.1:1/x?sslmode=disable", "FERRIC_OPERATOR_KEYS_FILE": keys,
		"FERRIC_DATABASE_WAIT": "500ms", "FERRIC_PUBLIC_LISTEN": "127.0.0.1:0"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"unknown driver":       {with("FERRIC_ENABLED_DRIVERS", "fake,hal9000"), `unknown driver "hal9000"`},
		"noauth off loopback":  {with("FERRIC_AUTH", "noauth", "FERRIC_PUBLIC_LISTEN", "0.0.0.0:0"), "only allowed on a loopback"},
		"no key file":          {with("FERRIC_OPERATOR_KEYS_FILE", ""), "FERRIC_OPERATOR_KEYS_FILE"},
		"no database":          {with("FERRIC_DATABASE_URL", ""), "FERRIC_DATABASE_URL"},
		"database down":        {with(), "database unreachable"},
		"malformed setting":    {with("FERRIC_AUTO_MIGRATE", "sometimes"), "FERRIC_AUTO_MIGRATE"},
		"unknown auth":         {with("FERRIC_AUTH", "kerberos"), "FERRIC_AUTH"},
		"basic without file":   {with("FERRIC_AUTH", "http_basic"), "FERRIC_HTPASSWD_FILE"},
		"basic missing file":   {with("FERRIC_AUTH", "http_basic", "FERRIC_HTPASSWD_FILE", "/nonexistent/htpasswd"), "FERRIC_HTPASSWD_FILE"},
		"basic bad roles":      {with("FERRIC_AUTH", "http_basic", "FERRIC_HTPASSWD_FILE", htpasswdFile(t), "FERRIC_HTPASSWD_ROLES", "alice=root"), "FERRIC_HTPASSWD_ROLES"},
		"audit log unwritable": {with("FERRIC_AUDIT_LOG", "/nonexistent/dir/audit.log"), "FERRIC_AUDIT_LOG"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), nil, envOf(tc.env), &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSchemaBehindIsRefusedUnlessAutoMigrate(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	db := sqlx.MustOpen("postgres", url)
	if _, err := db.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	env := map[string]string{"FERRIC_DATABASE_URL": url, "FERRIC_OPERATOR_KEYS_FILE": keyFile(t), "FERRIC_PUBLIC_LISTEN": "127.0.0.1:0"}
	err := run(context.Background(), nil, envOf(env), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "ferric migrate") {
		t.Fatalf("run() on an empty database = %v, want advice to migrate", err)
	}
	env["FERRIC_AUTO_MIGRATE"] = "true"
	env["FERRIC_PUBLIC_LISTEN"] = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), &bytes.Buffer{}) }()
	waitReady(t, "http://"+env["FERRIC_PUBLIC_LISTEN"]+"/readyz", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run() after cancel = %v, want a clean stop", err)
	}
}

func waitReady(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("program stopped during start-up: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

// htpasswdFile writes an htpasswd file with user alice, password alice-pw.
func htpasswdFile(t *testing.T) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHTTPBasicAndAuditLogEndToEnd starts the program with http_basic and
// an audit log file, as an Ironic standalone user would run it.
func TestHTTPBasicAndAuditLogEndToEnd(t *testing.T) {
	t.Parallel()
	audit := filepath.Join(t.TempDir(), "audit.log")
	env := map[string]string{
		"FERRIC_DATABASE_URL": pgtest.URL(t), "FERRIC_PUBLIC_LISTEN": freeAddr(t),
		"FERRIC_AUTH": "http_basic", "FERRIC_HTPASSWD_FILE": htpasswdFile(t), "FERRIC_HTPASSWD_ROLES": "alice=admin",
		"FERRIC_AUDIT_LOG": audit,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(env), &bytes.Buffer{}) }()
	base := "http://" + env["FERRIC_PUBLIC_LISTEN"]
	waitReady(t, base+"/readyz", done)

	post := func(password string) int {
		req, _ := http.NewRequest("POST", base+"/v1/nodes", strings.NewReader(`{"driver": "fake", "driver_info": {"ipmi_password": "p4ss"}}`))
		req.SetBasicAuth("alice", password)
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("alice-pw"); got != 201 {
		t.Errorf("create with the right password: %d", got)
	}
	if got := post("wrong"); got != 401 {
		t.Errorf("create with a wrong password: %d", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run() after cancel = %v", err)
	}
	data, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"subject":"alice"`) || !strings.Contains(lines[1], `"result":"denied"`) {
		t.Errorf("audit log = %s", data)
	}
	if strings.Contains(string(data), "p4ss") {
		t.Error("the audit log holds a request body")
	}
	if fi, err := os.Stat(audit); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode = %v, %v; want 0600", fi.Mode(), err)
	}
}
