// Package tempest_test runs Ironic's own API test suite, the admin API tests
// of ironic-tempest-plugin (Debian package ironic-tempest-plugin), against a
// Ferric started by the test: the operator API, a conductor running its
// workers, and a stand-in for Keystone that hands tempest an operator token
// and a service catalog pointing at Ferric. It is skipped when the plugin is
// not installed.
package tempest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/pgtest"
	"github.com/ferric-metal/ferric/shared/token"
)

func TestMain(m *testing.M) { pgtest.Main(m, store.Migrate) }

// adminModules are the admin API test modules of the suite that exercise
// what Ferric serves (the others test port groups, volumes, allocations and
// deploy templates, which it does not have).
var adminModules = []string{
	"test_api_discovery", "test_chassis", "test_drivers", "test_nodestates",
	"test_conductor", "test_ports", "test_ports_negative", "test_nodes",
}

const issuer = "ferric-tempest"

// knownGaps are the tests of Ferric's whole version range that fail for
// want of a feature Ferric does not have yet, and why. A gap that starts
// passing must leave this list.
var knownGaps = map[string]string{
	"test_ports.TestPortsWithPhysicalNetwork.test_create_ports_in_portgroup_with_physical_network":                                 "port groups",
	"test_ports.TestPortsWithPhysicalNetwork.test_update_ports_in_portgroup_with_physical_network":                                 "port groups",
	"test_ports_negative.TestPortsNegativeWithPhysicalNetwork.test_create_ports_in_portgroup_with_inconsistent_physical_network":   "port groups",
	"test_ports_negative.TestPortsNegativeWithPhysicalNetwork.test_update_ports_in_portgroup_with_inconsistent_physical_network":   "port groups",
	"test_ports_negative.TestPortsNegativeWithPhysicalNetwork.test_update_ports_in_portgroup_with_inconsistent_physical_network_2": "port groups",
	"test_nodes.TestNodeConductor.test_list_nodes_by_conductor":                                                                    "node.conductor (Ferric has no hash ring: it is null) and ?conductor=",
}

// TestIronicTempestAdminAPI runs the admin API tests of ironic-tempest-plugin
// twice against one Ferric: the tests that need no microversion (the
// suite's own subset, at API 1.1, which every one must pass), then Ferric's
// whole range, 1.1 to 1.81, where only the known gaps may fail.
func TestIronicTempestAdminAPI(t *testing.T) {
	python, pluginDir := findPlugin(t)
	f := startFerric(t)
	t.Run("no-microversion", func(t *testing.T) {
		// 105 tests with Debian's ironic-tempest-plugin 2.5.0; the issue
		// counted 94 of them, less the *OldApi classes.
		runSuite(t, python, pluginDir, f.keystoneURL, "max_microversion = 1.1", nil, 94)
	})
	t.Run("1.1-1.81", func(t *testing.T) {
		runSuite(t, python, pluginDir, f.keystoneURL, "min_microversion = 1.1\nmax_microversion = 1.81", knownGaps, 150)
	})
}

// runSuite runs the suite with the given [baremetal] microversion settings
// and fails on every failed test not in gaps, on every gap that passed, and
// when fewer than wantPassed passed (tests skipped that should not be).
func runSuite(t *testing.T, python, pluginDir, keystoneURL, versions string, gaps map[string]string, wantPassed int) {
	dir := t.TempDir()
	writeConfig(t, dir, keystoneURL, versions)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pattern := `ironic_tempest_plugin\.tests\.api\.admin\.(` + strings.Join(adminModules, "|") + `)\.`
	run := exec.CommandContext(ctx, python, "-m", "stestr",
		"--test-path", filepath.Join(pluginDir, "tests", "api", "admin"),
		"--top-dir", filepath.Dir(pluginDir),
		"run", "--concurrency", "4", "--subunit", pattern)
	run.Dir = dir
	run.Env = append(os.Environ(), "TEMPEST_CONFIG_DIR="+dir, "TEMPEST_CONFIG=tempest.conf", "HOME="+dir)
	var runErr bytes.Buffer
	run.Stderr = &runErr
	subunit, err := run.Output()
	if err != nil && len(subunit) == 0 {
		t.Fatalf("stestr: %v\n%s", err, runErr.String())
	}
	counts := map[string]int{}
	var failed []string
	for _, r := range parseSubunit(t, python, subunit) {
		counts[r.status]++
		name := shortName(r.id)
		_, gap := gaps[name]
		switch {
		case (r.status == "fail" || r.status == "uxsuccess") && !gap:
			failed = append(failed, r.id+"\n"+r.details)
		case r.status == "success" && gap:
			t.Errorf("%s passes: remove it from the known gaps (%s)", name, gaps[name])
		}
	}
	t.Logf("tempest (%s): %d passed, %d failed (%d known gaps), %d skipped",
		strings.ReplaceAll(versions, "\n", ", "), counts["success"], counts["fail"], len(gaps), counts["skip"])
	sort.Strings(failed)
	for _, f := range failed {
		t.Errorf("failed: %s", f)
	}
	if counts["success"] < wantPassed {
		t.Errorf("%d tests passed, want at least %d (stestr: %v)\n%s", counts["success"], wantPassed, err, tail(runErr.String(), 4000))
	}
}

// shortName is a test's id without the plugin's prefix and tempest's
// [id-...] suffix: module.Class.test.
func shortName(id string) string {
	id = strings.TrimPrefix(id, "ironic_tempest_plugin.tests.api.admin.")
	name, _, _ := strings.Cut(id, "[")
	return name
}

// findPlugin returns a Python interpreter that can import the plugin, and
// the plugin's folder; it skips the test when there is none.
func findPlugin(t *testing.T) (python, pluginDir string) {
	t.Helper()
	candidates := []string{"/usr/bin/python3"} // Debian's, where the package installs
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import os, stestr, subunit, ironic_tempest_plugin as p; print(os.path.dirname(p.__file__))").Output()
		if err == nil {
			return py, strings.TrimSpace(string(out))
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ironic-tempest-plugin is not installed: CI must install it")
	}
	t.Skip("ironic-tempest-plugin is not installed (apt-get install ironic-tempest-plugin)")
	return "", ""
}

type ferric struct {
	keystoneURL string
}

// startFerric runs the operator API and a conductor (workers and periodic
// work) over a fresh database with the fake driver, and a stand-in for
// Keystone in front of them; all stop when the test ends.
func startFerric(t *testing.T) ferric {
	t.Helper()
	db := pgtest.NewDB(t)
	reg := builtin.Registry()
	if err := reg.Enable([]string{"fake"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys, err := token.ParseKeys(token.NewKeyLine("t1"))
	if err != nil {
		t.Fatal(err)
	}
	c := conductor.New(db, reg, log, conductor.Options{Name: "tempest-conductor"})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // ends with the test
		defer wg.Done()
		_ = c.RunWorkers(ctx, conductor.WorkerConfig{Pools: map[string]int{conductor.PoolOperator: 8, conductor.PoolAgent: 2}, PollInterval: 20 * time.Millisecond})
	}()
	go func() { // ends with the test
		defer wg.Done()
		_ = c.RunPeriodic(ctx, conductor.PeriodicConfig{})
	}()
	t.Cleanup(func() { stop(); wg.Wait() })

	api := publicapi.New(c, publicapi.NewJWTAuth(keys, issuer), db, log)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	mint := func() (string, error) {
		claims := token.Claims{Role: "admin"}
		claims.Subject = "tempest"
		return keys.Mint(claims, issuer, token.AudiencePublic, time.Hour, time.Now())
	}
	ks := httptest.NewServer(keystone(srv.URL, mint))
	t.Cleanup(ks.Close)
	waitRegistered(t, db)
	return ferric{keystoneURL: ks.URL}
}

// waitRegistered waits for the conductor's first heartbeat: the API refuses
// work for drivers no live conductor serves.
func waitRegistered(t *testing.T, db interface {
	Get(dest any, query string, args ...any) error
}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM conductors`); err == nil && n > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the conductor did not register within 30 s")
}

// writeConfig writes tempest.conf, with the [baremetal] microversion
// settings given, and the pre-provisioned accounts: admins scoped to a
// project and to the system, as the suite asks for both.
func writeConfig(t *testing.T, dir, keystoneURL, versions string) {
	t.Helper()
	var accounts strings.Builder
	for i := range 8 {
		fmt.Fprintf(&accounts, "- username: admin%d\n  password: secret\n  project_name: admin%d\n  roles: [admin]\n", i, i)
		fmt.Fprintf(&accounts, "- username: system%d\n  password: secret\n  system: all\n  roles: [admin]\n", i)
	}
	conf := fmt.Sprintf(`[DEFAULT]
log_dir = %[1]s/logs
use_stderr = false

[oslo_concurrency]
lock_path = %[1]s/locks

[auth]
use_dynamic_credentials = false
test_accounts_file = %[1]s/accounts.yaml
admin_domain_scope = false

[identity]
uri_v3 = %[2]s/v3
auth_version = v3
region = RegionOne

[identity-feature-enabled]
api_v2 = false

[service_available]
ironic = true
neutron = false
nova = false
glance = false
cinder = false
swift = false

[enforce_scope]
ironic = false

[baremetal]
driver = fake
%[3]s
power_timeout = 60
unprovision_timeout = 60

[compute]
build_interval = 1
build_timeout = 60
`, dir, keystoneURL, versions)
	for name, text := range map[string]string{"tempest.conf": conf, "accounts.yaml": accounts.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"logs", "locks"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

type result struct{ status, id, details string }

// subunitReader prints one result per test from a subunit v2 stream:
// "status id", then its details indented, each block ended by a line ".".
const subunitReader = `
import sys, subunit, testtools
def show(test):
    print(test["status"], test["id"])
    if test["status"] in ("fail", "uxsuccess"):
        for name, content in test["details"].items():
            if name in ("traceback", "reason"):
                for line in content.as_text().splitlines():
                    print("  " + line)
    print(".", flush=True)
result = testtools.StreamToDict(show)
result.startTestRun()
subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout").run(result)
result.stopTestRun()
`

func parseSubunit(t *testing.T, python string, stream []byte) []result {
	t.Helper()
	cmd := exec.Command(python, "-c", subunitReader)
	cmd.Stdin = bytes.NewReader(stream)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading the subunit stream: %v", err)
	}
	var results []result
	var cur *result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == ".":
			if cur != nil && cur.id != "" {
				results = append(results, *cur)
			}
			cur = nil
		case cur == nil:
			status, id, _ := strings.Cut(line, " ")
			cur = &result{status: status, id: id}
		default:
			cur.details += line + "\n"
		}
	}
	return results
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
