package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ferric-metal/ferric/agent-api/agent"
	"github.com/ferric-metal/ferric/agent-api/hwinventory"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// machine is a simulated server: a Redfish BMC (in this process), a
// hardware profile whose disk is a sparse file, and, once started, its
// deploy agent, which runs only while the BMC says the machine is on and
// booted from the network, as a ramdisk would.
type machine struct {
	index   int
	sim     *redfishsim.Simulator
	bmc     *httptest.Server
	profile *hwinventory.Profile
	mac     string
	disk    string // the disk's backing file
	log     *slog.Logger
}

// diskSize is each simulated machine's disk: sparse, and above the 4 GiB
// that IPA's (and Ferric's) default root device choice requires.
const diskSize = 8 << 30

func newMachine(t *testing.T, index int) *machine {
	t.Helper()
	p, err := hwinventory.SimulatedProfile(index, t.TempDir(), diskSize)
	if err != nil {
		t.Fatal(err)
	}
	m0, err := p.Machine()
	if err != nil {
		t.Fatal(err)
	}
	sim := redfishsim.New(redfishsim.Options{})
	bmc := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { sim.Close(); bmc.Close() })
	return &machine{index: index, sim: sim, bmc: bmc, profile: p, mac: m0.Inventory.Interfaces[0].MACAddress,
		disk: m0.Disks[0].Path, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Machine, PowerOff and Reboot make machine an agent.Hardware, and
// AgentBoot and BootNumber an agent.BootFollower.
func (m *machine) Machine(context.Context) (*hwinventory.Machine, error) { return m.profile.Machine() }

func (m *machine) PowerOff() error { m.sim.SetPowerState("1", "Off"); return nil }

func (m *machine) Reboot() error {
	m.sim.SetPowerState("1", "Off")
	m.sim.SetPowerState("1", "On")
	return nil
}

func (m *machine) AgentBoot(ctx context.Context) (int, error) {
	for {
		if n := m.BootNumber(); n > 0 {
			if boots := m.sim.Boots("1"); boots[len(boots)-1] == "Pxe" || boots[len(boots)-1] == "Cd" {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *machine) BootNumber() int {
	if m.sim.PowerState("1") != "On" {
		return 0
	}
	return len(m.sim.Boots("1"))
}

// runAgent starts the machine's agent in this process; it stops with the
// test, or when the returned function is called.
func (m *machine) runAgent(t *testing.T, s *stack) (stop func()) {
	t.Helper()
	hc, err := agent.NewHTTPClient("", 4)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&prefixWriter{name: fmt.Sprintf("agent-%d", m.index), w: s.logs}, nil))
	a := agent.New(agent.Config{APIURL: s.agentURL, Version: "ferric-agent e2e", MinBackoff: 100 * time.Millisecond,
		MaxBackoff: time.Second, ImageStallTimeout: 30 * time.Second}, hc, m, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// enroll creates the machine's node (redfish driver) and its port.
func (m *machine) enroll(t *testing.T, s *stack, name string) string {
	t.Helper()
	ctx := context.Background()
	n, err := nodes.Create(ctx, s.client, nodes.CreateOpts{
		Name: name, Driver: "redfish",
		DriverInfo: map[string]any{"redfish_address": m.bmc.URL, "redfish_system_id": "1",
			"redfish_username": "admin", "redfish_password": "password"},
	}).Extract()
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	pxe := true
	if _, err := ports.Create(ctx, s.client, ports.CreateOpts{NodeUUID: n.UUID, Address: m.mac, PXEEnabled: &pxe}).Extract(); err != nil {
		t.Fatalf("create port: %v", err)
	}
	return n.UUID
}

// availableMachine is a machine with its agent running and its node taken
// to available; stop stops the agent.
func availableMachine(t *testing.T, s *stack, index int, name string) (m *machine, id string, stop func()) {
	t.Helper()
	m = newMachine(t, index)
	stop = m.runAgent(t, s)
	id = m.enroll(t, s, name)
	makeAvailable(t, s, id)
	return m, id, stop
}

// deployImage points the node at an image and asks for its deploy.
func deployImage(t *testing.T, s *stack, id, url, checksum string) {
	t.Helper()
	setInstance(t, s, id, map[string]any{"image_source": url, "image_checksum": checksum})
	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
}

// provision asks for a provision state change and expects 202.
func provision(t *testing.T, s *stack, id string, opts nodes.ProvisionStateOpts) {
	t.Helper()
	if err := nodes.ChangeProvisionState(context.Background(), s.client, id, opts).ExtractErr(); err != nil {
		t.Fatalf("node %s: %s: %v", id, opts.Target, err)
	}
}

// waitState waits for the node to reach want; a failed state other than
// want ends the test with the node's last_error.
func waitState(t *testing.T, s *stack, id, want string, within time.Duration) *nodes.Node {
	t.Helper()
	var n *nodes.Node
	eventually(t, within, "node "+id+" to reach "+want, func() (bool, string) {
		var err error
		n, err = nodes.Get(context.Background(), s.client, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if strings.HasSuffix(n.ProvisionState, "failed") && n.ProvisionState != want {
			t.Fatalf("node %s is %s, not %s: %s", id, n.ProvisionState, want, n.LastError)
		}
		settled := n.TargetProvisionState == "" || !stableStates[want] // only stable states clear their target
		return n.ProvisionState == want && settled, n.ProvisionState + " " + n.LastError
	})
	return n
}

var stableStates = map[string]bool{"enroll": true, "manageable": true, "available": true, "active": true}

// setInstance sets instance_info members.
func setInstance(t *testing.T, s *stack, id string, info map[string]any) {
	t.Helper()
	var ops nodes.UpdateOpts
	for k, v := range info {
		ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/" + k, Value: v})
	}
	if _, err := nodes.Update(context.Background(), s.client, id, ops).Extract(); err != nil {
		t.Fatalf("set instance_info: %v", err)
	}
}

// makeAvailable takes an enrolled node to available: manage, then provide
// (which cleans through the agent).
func makeAvailable(t *testing.T, s *stack, id string) {
	t.Helper()
	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, s, id, "manageable", time.Minute)
	provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, s, id, "available", 2*time.Minute)
}

// images serves test images over HTTP.
type images struct {
	dir string
	srv *httptest.Server
}

func newImages(t testing.TB) *images {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return &images{dir: dir, srv: srv}
}

// rawImage makes a whole-disk image: an MBR with one Linux partition from
// 1 MiB to the end, filled with random bytes.
func rawImage(t *testing.T, size int) []byte {
	t.Helper()
	img := make([]byte, size)
	if _, err := rand.Read(img[1<<20:]); err != nil {
		t.Fatal(err)
	}
	entry := img[446:462]
	entry[4] = 0x83
	binary.LittleEndian.PutUint32(entry[8:], 2048)
	binary.LittleEndian.PutUint32(entry[12:], uint32(size/512-2048))
	binary.LittleEndian.PutUint32(img[440:], 0x46455252) // disk signature
	img[510], img[511] = 0x55, 0xaa
	return img
}

// publish writes the image in format (raw, gzip, zstd, qcow2) and returns
// its URL and the sha256 of the file served.
func (im *images) publish(t *testing.T, name string, raw []byte, format string) (url, sha string) {
	t.Helper()
	path := filepath.Join(im.dir, name)
	var data []byte
	switch format {
	case "raw":
		data = raw
	case "gzip":
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(raw)
		w.Close()
		data = b.Bytes()
	case "zstd":
		var b bytes.Buffer
		w, _ := zstd.NewWriter(&b)
		w.Write(raw)
		w.Close()
		data = b.Bytes()
	case "qcow2":
		src := filepath.Join(t.TempDir(), "src.raw")
		if err := os.WriteFile(src, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		qemuImg := lookTool(t, "qemu-img", "qemu-utils")
		if out, err := exec.Command(qemuImg, "convert", "-f", "raw", "-O", "qcow2", src, path).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v\n%s", err, out)
		}
		var err error
		if data, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown format %s", format)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return im.srv.URL + "/" + name, hex.EncodeToString(sum[:])
}

// lookTool finds a command-line tool the test needs; without it the test
// is skipped, except in CI, which installs it.
func lookTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: CI must install %s", name, debianPackage)
	}
	t.Skipf("%s not found (apt-get install %s)", name, debianPackage)
	return ""
}

// diskPrefix reads the first n bytes of a disk file.
func diskPrefix(t *testing.T, path string, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}
