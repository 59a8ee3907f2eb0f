package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/jmoiron/sqlx"
)

// TestInspectAndFastTrack: an inspection stores the agent's real inventory
// of the machine (its MAC, disk and serial number) and sets the node's
// properties; with fast track, the agent that cleaned the node stays up,
// and the deploy goes on without a power cycle until the final reboot.
func TestInspectAndFastTrack(t *testing.T) {
	s := newStack(t, stackOptions{env: []string{"FERRIC_FAST_TRACK=true"}})
	im := newImages(t)
	raw := rawImage(t, imageSize)

	m := newMachine(t, 40)
	m.runAgent(t, s)
	id := m.enroll(t, s, "fast")
	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, s, id, "manageable", time.Minute)
	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetInspect})
	n := waitState(t, s, id, "manageable", 2*time.Minute)
	if n.Properties["cpus"] == nil || n.Properties["memory_mb"] == nil || n.Properties["local_gb"] != float64(diskSize>>30-1) {
		t.Errorf("properties after inspection: %v", n.Properties)
	}
	inv := nodeInventory(t, s, id)
	want, err := m.profile.Machine()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inv, `"`+m.mac+`"`) || !strings.Contains(inv, `"`+want.Inventory.SystemVendor.SerialNumber+`"`) ||
		!strings.Contains(inv, `"`+want.Inventory.Disks[0].Name+`"`) {
		t.Errorf("the stored inventory lacks the machine's MAC %s, serial %s or disk %s:\n%s",
			m.mac, want.Inventory.SystemVendor.SerialNumber, want.Inventory.Disks[0].Name, inv)
	}

	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, s, id, "available", 2*time.Minute)
	if st := m.sim.PowerState("1"); st != "On" {
		t.Fatalf("with fast track the machine should stay on after cleaning; the BMC says %s", st)
	}
	resetsBefore := len(m.sim.ResetHistory("1"))
	bootsBefore := len(m.sim.Boots("1"))

	url, sum := im.publish(t, "image-fast", raw, "raw")
	setInstance(t, s, id, map[string]any{"image_source": url, "image_checksum": "sha256:" + sum})
	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitState(t, s, id, "active", 2*time.Minute)
	if got := diskPrefix(t, m.disk, len(raw)); !bytes.Equal(got, raw) {
		t.Fatalf("the disk does not hold the image (first difference at %d)", firstDiff(got, raw))
	}
	resets := m.sim.ResetHistory("1")[resetsBefore:]
	if len(resets) != 1 {
		t.Errorf("the fast-track deploy reset the machine %d times (%v); want once, to boot the image", len(resets), resets)
	}
	if boots := m.sim.Boots("1")[bootsBefore:]; len(boots) != 1 || boots[0] != "Hdd" {
		t.Errorf("boots during the fast-track deploy: %v, want only the final one from the disk", boots)
	}
}

// TestFerricAgentProgram runs the ferric-agent program itself on a
// simulation profile, against a node of the fake driver: it is looked up,
// cleans the node, and deploys it.
func TestFerricAgentProgram(t *testing.T) {
	s := newStack(t, stackOptions{})
	im := newImages(t)
	raw := rawImage(t, 4<<20)

	dir := t.TempDir()
	profile := filepath.Join(dir, "machine.json")
	if err := os.WriteFile(profile, []byte(`{
		"system_vendor": {"manufacturer": "Ferric", "product_name": "Simulated", "serial_number": "PROG-0001"},
		"boot_mode": "bios", "cpu": {"count": 4, "architecture": "x86_64"}, "memory": {"size": "8GiB"},
		"interfaces": [{"name": "eth0", "mac_address": "52:54:00:fe:00:01"}],
		"disks": [{"name": "/dev/sda", "file": "disk.img", "size": "6GiB"}]
	}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "ferric-agent"), "-simulate", profile, "-api", s.agentURL)
	out := &prefixWriter{name: "ferric-agent", w: s.logs}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() }) // before the stack's: its log is the agent's last words

	n, err := nodes.Create(ctx, s.client, nodes.CreateOpts{Name: "program", Driver: "fake",
		DriverInfo: map[string]any{"fake_agent": true}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	createPort(t, s, n.UUID, "52:54:00:fe:00:01")
	provision(t, s, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, s, n.UUID, "manageable", time.Minute)
	provision(t, s, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, s, n.UUID, "available", 2*time.Minute)
	url, sum := im.publish(t, "image-program", raw, "gzip")
	setInstance(t, s, n.UUID, map[string]any{"image_source": url, "image_os_hash_algo": "sha256", "image_os_hash_value": sum})
	provision(t, s, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitState(t, s, n.UUID, "active", 2*time.Minute)
	if got := diskPrefix(t, filepath.Join(dir, "disk.img"), len(raw)); !bytes.Equal(got, raw) {
		t.Fatalf("the program did not write the image (first difference at %d)", firstDiff(got, raw))
	}
	history := nodeHistory(t, s, n.UUID)
	for _, want := range []string{"Agent given clean", "Agent given deploy", "Agent reported deploy success"} {
		if !strings.Contains(history, want) {
			t.Errorf("the node's history lacks %q:\n%s", want, history)
		}
	}
}

func createPort(t *testing.T, s *stack, node, mac string) {
	t.Helper()
	body := map[string]any{"node_uuid": node, "address": mac, "pxe_enabled": true}
	if code, answer := operatorRequest(t, s, http.MethodPost, "/v1/ports", body); code != http.StatusCreated {
		t.Fatalf("create port: %d %s", code, answer)
	}
}

func nodeInventory(t *testing.T, s *stack, id string) string {
	t.Helper()
	code, body := operatorRequest(t, s, http.MethodGet, "/v1/nodes/"+id+"/inventory", nil)
	if code != http.StatusOK {
		t.Fatalf("inventory: %d %s", code, body)
	}
	return body
}

// nodeHistory reads the node's history from the database (the API's
// history endpoint is another issue's).
func nodeHistory(t *testing.T, s *stack, id string) string {
	t.Helper()
	db := sqlx.MustOpen("postgres", s.dbURL)
	defer db.Close()
	var events []string
	if err := db.Select(&events, `SELECT event FROM node_history h JOIN nodes n ON n.id = h.node_id
		WHERE n.uuid = $1 ORDER BY h.id`, id); err != nil {
		t.Fatal(err)
	}
	return strings.Join(events, "\n")
}

// operatorRequest calls the operator API as the stack's admin.
func operatorRequest(t *testing.T, s *stack, method, path string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, s.publicURL+path, r)
	req.Header.Set("X-Auth-Token", s.client.ProviderClient.TokenID)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}
