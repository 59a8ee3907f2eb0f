package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/syncbuf"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

// logBuffer collects the program's log lines; safe for concurrent use.
type logBuffer struct{ syncbuf.Buffer }

// addr waits for the program's "serving agent API" log line and returns
// the address it names.
func (l *logBuffer) addr(t *testing.T, exited <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("program exited: %v\n%s", err, l.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(l.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving agent API" {
				return line.Addr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no serving line:\n%s", l.String())
	return ""
}

// start runs the program with env until the test ends; it returns the
// address it serves on.
func start(t *testing.T, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logBuffer{}
	exited := make(chan error, 1)
	go func() { exited <- run(ctx, nil, func(k string) string { return env[k] }, logs) }() // ends on cancel
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return logs.addr(t, exited)
}

func baseEnv(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "agent-keys")
	if err := os.WriteFile(keys, []byte(token.NewKeyLine("ag1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"FERRIC_DATABASE_URL":    dbURL,
		"FERRIC_AGENT_KEYS_FILE": keys,
		"FERRIC_AGENT_LISTEN":    "127.0.0.1:0",
		"FERRIC_LOG_FORMAT":      "json",
		"FERRIC_DISCOVERY":       "true",
	}
}

// TestProgramAsRestrictedRole runs the real program with the database role
// of deployments/database-roles.sql: it starts (schema check included),
// serves a discovery lookup and a checkin, and cuts off a client that
// sends its headers too slowly.
func TestProgramAsRestrictedRole(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	owner, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	script, err := os.ReadFile("../deployments/database-roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(string(script)); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dbURL)
	u.User = url.User("ferric_agent_api")
	addr := start(t, baseEnv(t, u.String()))

	inventory := `{"interfaces": [{"name": "eno1", "mac_address": "52:54:00:12:34:56"}], "bmc_address": "0.0.0.0"}`
	resp, err := http.Post("http://"+addr+"/v1/lookup", "application/json", strings.NewReader(inventory))
	if err != nil {
		t.Fatal(err)
	}
	var found struct {
		NodeUUID string `json:"node_uuid"`
		Token    string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&found)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(found.Token) < 32 {
		t.Fatalf("discovery lookup: %d %+v", resp.StatusCode, found)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/checkin", strings.NewReader(`{"agent_version": "1", "status": "idle"}`))
	req.Header.Set("Authorization", "Bearer "+found.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var next struct{ Action string }
	_ = json.NewDecoder(resp.Body).Decode(&next)
	resp.Body.Close()
	if resp.StatusCode != 200 || next.Action != "power_off" {
		t.Errorf("checkin of a discovered node: %d %+v, want power_off", resp.StatusCode, next)
	}

	// A slow client: headers never finished. The server hangs up after
	// its read-header timeout instead of holding the connection.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/lookup HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(agentapi.ServerTimeouts.ReadHeader + 5*time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", time.Since(begin))
	}
	if took := time.Since(begin); took > agentapi.ServerTimeouts.ReadHeader+2*time.Second {
		t.Errorf("slow client held the connection for %v", took)
	}
}

// TestProgramServesTLS: with a certificate configured, the agent API speaks
// only TLS.
func TestProgramServesTLS(t *testing.T) {
	t.Parallel()
	env := baseEnv(t, pgtest.URL(t))
	certPEM, keyPEM := selfSigned(t)
	dir := t.TempDir()
	env["FERRIC_AGENT_TLS_CERT_FILE"] = filepath.Join(dir, "cert.pem")
	env["FERRIC_AGENT_TLS_KEY_FILE"] = filepath.Join(dir, "key.pem")
	_ = os.WriteFile(env["FERRIC_AGENT_TLS_CERT_FILE"], certPEM, 0o600)
	_ = os.WriteFile(env["FERRIC_AGENT_TLS_KEY_FILE"], keyPEM, 0o600)
	addr := start(t, env)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET / over TLS: %d", resp.StatusCode)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS listener")
		}
	}
}

func TestProgramRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]map[string]string{
		"no agent keys":      {"FERRIC_AGENT_KEYS_FILE": ""},
		"bad discovery rule": {"FERRIC_DISCOVERY_RULES": "bmc_address -> ipmi ipmi_address={password}"},
		"half of TLS":        {"FERRIC_AGENT_TLS_CERT_FILE": "/etc/ssl/cert.pem"},
		"bad network":        {"FERRIC_AGENT_ALLOWED_CIDRS": "10.0.0.0/33"},
		"bad BMC network":    {"FERRIC_DISCOVERY_BMC_NETWORKS": "10.10.0.0/16,bmc.example"},
		"malformed database": {"FERRIC_DATABASE_URL": "postgres://ferric:pw@db:54x2/ferric"},
	} {
		env := baseEnv(t, "postgres://nobody@127.0.0.1:1/x")
		for k, v := range change {
			env[k] = v
		}
		err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
		if err == nil || strings.Contains(err.Error(), "database") {
			t.Errorf("%s: %v, want a refusal before connecting", name, err)
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent-api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestProgramOptionsStarIsNotFound: "OPTIONS *" is not an agent request,
// so it is 404 like every other one (net/http would answer 200 itself).
func TestProgramOptionsStarIsNotFound(t *testing.T) {
	t.Parallel()
	addr := start(t, baseEnv(t, pgtest.URL(t)))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("OPTIONS *: %d, want 404", resp.StatusCode)
	}
}
