// Package ramdisk_test boots the deploy ramdisk that build.sh makes under
// qemu (TCG: no KVM needed) with a fake agent API, and checks what only a
// real boot shows: the init brings the network up, ferric-agent starts and
// its lookup carries the machine's real inventory; the init restarts an
// agent that exits; the virtual-media ISO boots.
//
// It builds the ramdisk itself (about 20 s once the .debs are cached; they
// are kept in the user's cache directory), or takes a built one from
// FERRIC_RAMDISK_DIR (the output directory of build.sh). Without
// qemu-system-x86_64 it skips, unless CI is set.
package ramdisk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
)

const (
	bootMAC    = "52:54:00:12:34:56"
	bootIF     = "BOOTIF=01-52-54-00-12-34-56"
	diskSerial = "FERRIC-E2E"
	diskSize   = 8 << 30
	banner     = "ferric-ramdisk: starting ferric-agent"
	// TCG boots in about 10 s here; a slow CI machine gets ample room.
	bootDeadline = 3 * time.Minute
)

func TestRamdisk(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM: not with -short")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): the ramdisk boot test is skipped")
		}
		t.Fatal("CI is set but qemu-system-x86_64 is missing: install qemu-system-x86")
	}
	kernel, initrd := ramdisk(t)

	t.Run("lookup", func(t *testing.T) {
		api := newFakeAPI(t)
		vm := boot(t, qemu, "-kernel", kernel, "-initrd", initrd,
			"-append", "console=ttyS0 panic=-1 ferric.api="+api.url+" "+bootIF)
		first := api.waitLookup(t, vm)
		checkInventory(t, first.inv, bootMAC)
		vm.reportBootTime(t, first.at)
		// The 404 must not stop the agent: it looks up again.
		api.waitLookup(t, vm)
	})

	// lookup alone, so its boot time is the machine's; these two together.
	t.Run("respawn", func(t *testing.T) {
		t.Parallel()
		// No ferric.api=: the agent refuses to run and exits 1, as a
		// misconfigured one would; the init must start it again.
		vm := boot(t, qemu, "-kernel", kernel, "-initrd", initrd,
			"-append", "console=ttyS0 panic=-1 "+bootIF)
		vm.waitLine(t, "ferric-agent: no agent API URL")
		vm.waitLine(t, "ferric-ramdisk: ferric-agent exited with status 1")
		vm.waitLine(t, banner)
		vm.waitLine(t, "ferric-agent: no agent API URL")
	})

	t.Run("iso", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("xorriso"); err != nil && os.Getenv("CI") == "" {
			t.Skip("xorriso is not installed: the ISO boot is skipped")
		}
		api := newFakeAPI(t)
		iso := filepath.Join(t.TempDir(), "node.iso")
		// A per-node ISO, as the virtual-media boot interface makes them:
		// no BOOTIF, so the init takes the NIC with carrier.
		run(t, 2*time.Minute, "bash", "make-iso.sh", kernel, initrd,
			"console=ttyS0 panic=-1 ferric.api="+api.url, iso)
		vm := boot(t, qemu, "-drive", "file="+iso+",if=ide,media=cdrom,format=raw,readonly=on", "-boot", "d")
		first := api.waitLookup(t, vm)
		checkInventory(t, first.inv, "")
		vm.reportBootTime(t, first.at)
	})
}

// ramdisk returns the kernel and initramfs: FERRIC_RAMDISK_DIR's, or new
// ones from build.sh.
func ramdisk(t *testing.T) (kernel, initrd string) {
	dir := os.Getenv("FERRIC_RAMDISK_DIR")
	if dir == "" {
		dir = t.TempDir()
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = t.TempDir()
		}
		start := time.Now()
		run(t, 10*time.Minute, "bash", "build.sh", "--out", dir, "--no-iso",
			"--cache", filepath.Join(cache, "ferric", "ramdisk"))
		t.Logf("build.sh: %.1f s", time.Since(start).Seconds())
	}
	kernel = filepath.Join(dir, "ferric-agent-amd64.kernel")
	initrd = filepath.Join(dir, "ferric-agent-amd64.initramfs")
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	return kernel, initrd
}

// run runs a command with a deadline; its output is shown if it fails.
func run(t *testing.T, timeout time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func checkInventory(t *testing.T, inv agentwire.Inventory, pxeMAC string) {
	t.Helper()
	var disk *agentwire.Disk
	for i := range inv.Disks {
		if inv.Disks[i].Name == "/dev/vda" {
			disk = &inv.Disks[i]
		}
	}
	switch {
	case disk == nil:
		t.Errorf("no /dev/vda in the inventory's disks: %+v", inv.Disks)
	case disk.Serial != diskSerial || disk.Size != diskSize:
		t.Errorf("/dev/vda: serial %q, size %d; want %q, %d", disk.Serial, disk.Size, diskSerial, diskSize)
	}
	var nic *agentwire.Interface
	for i := range inv.Interfaces {
		if strings.EqualFold(inv.Interfaces[i].MACAddress, bootMAC) {
			nic = &inv.Interfaces[i]
		}
	}
	switch {
	case nic == nil:
		t.Errorf("no interface with MAC %s: %+v", bootMAC, inv.Interfaces)
	case nic.IPv4Address != "10.0.2.15" || nic.Driver != "virtio_net":
		// qemu's DHCP hands out 10.0.2.15: the init's DHCP configured it.
		t.Errorf("interface %s: IPv4 %q, driver %q; want 10.0.2.15 from DHCP, virtio_net", nic.Name, nic.IPv4Address, nic.Driver)
	}
	var got string
	if inv.Boot != nil {
		got = inv.Boot.PXEInterface
	}
	if !strings.EqualFold(got, pxeMAC) {
		t.Errorf("boot.pxe_interface %q, want %q", got, pxeMAC)
	}
}

type lookup struct {
	at  time.Time
	inv agentwire.Inventory
}

// fakeAPI stands in for the agent API: it records each lookup and answers
// 404 (no node), which the agent retries.
type fakeAPI struct {
	url     string // as the guest reaches it
	lookups chan lookup
}

func newFakeAPI(t *testing.T) *fakeAPI {
	api := &fakeAPI{lookups: make(chan lookup, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/lookup" {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
			return
		}
		var inv agentwire.Inventory
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields() // as strict as the agent API
		if err := dec.Decode(&inv); err != nil {
			t.Errorf("lookup body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case api.lookups <- lookup{at: time.Now(), inv: inv}:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error":"no node matches"}`)
	}))
	t.Cleanup(srv.Close)
	// qemu's user network: the guest reaches the host's loopback at 10.0.2.2.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	api.url = "http://10.0.2.2:" + port
	return api
}

func (a *fakeAPI) waitLookup(t *testing.T, vm *vm) lookup {
	t.Helper()
	select {
	case l := <-a.lookups:
		return l
	case <-vm.exited:
		vm.fail(t, "qemu exited before the lookup")
	case <-vm.ctx.Done():
		vm.fail(t, "no lookup before the deadline")
	}
	panic("unreachable")
}

// vm is one qemu run; its serial console is kept line by line.
type vm struct {
	ctx     context.Context
	started time.Time
	exited  chan struct{}

	mu      sync.Mutex
	lines   []consoleLine
	matched int           // lines[:matched] were searched by waitLine
	changed chan struct{} // closed and replaced at each new line
}

type consoleLine struct {
	at   time.Time
	text string
}

// boot starts qemu with a virtio NIC (BOOTIF's MAC) and a virtio disk, the
// serial console on its stdout, and a deadline; the test's end kills it.
func boot(t *testing.T, qemu string, args ...string) *vm {
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(diskSize); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), bootDeadline)
	v := &vm{ctx: ctx, exited: make(chan struct{}), changed: make(chan struct{})}
	all := append([]string{
		"-accel", "tcg", "-m", "1024", "-nodefaults", "-display", "none",
		"-serial", "stdio", "-monitor", "none", "-no-reboot",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=" + bootMAC,
		"-drive", "file=" + disk + ",if=none,id=d0,format=raw",
		"-device", "virtio-blk-pci,drive=d0,serial=" + diskSerial,
	}, args...)
	cmd := exec.CommandContext(ctx, qemu, all...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			v.add(strings.TrimRight(sc.Text(), "\r"))
		}
		err := cmd.Wait()
		if s := strings.TrimSpace(stderr.String()); s != "" || (err != nil && ctx.Err() == nil) {
			v.add(fmt.Sprintf("[qemu: %v] %s", err, s))
		}
		close(v.exited)
	}()
	t.Cleanup(func() {
		cancel() // kills qemu
		<-v.exited
	})
	return v
}

func (v *vm) add(line string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, consoleLine{time.Now(), line})
	close(v.changed)
	v.changed = make(chan struct{})
}

// waitLine waits for a console line containing s, after the line that the
// last waitLine matched.
func (v *vm) waitLine(t *testing.T, s string) consoleLine {
	t.Helper()
	gone := false
	for {
		v.mu.Lock()
		for i := v.matched; i < len(v.lines); i++ {
			if strings.Contains(v.lines[i].text, s) {
				v.matched = i + 1
				l := v.lines[i]
				v.mu.Unlock()
				return l
			}
		}
		changed := v.changed
		v.mu.Unlock()
		if gone { // every line is in: qemu closed its stdout before it exited
			v.fail(t, fmt.Sprintf("qemu exited before the console said %q", s))
		}
		select {
		case <-changed:
		case <-v.exited:
			gone = true
		case <-v.ctx.Done():
			v.fail(t, fmt.Sprintf("the console did not say %q before the deadline", s))
		}
	}
}

// kernelStamp is the printk time at the start of a kernel console line.
var kernelStamp = regexp.MustCompile(`^\[\s*(\d+\.\d+)\]`)

// reportBootTime logs how long the boot took: qemu's start to the kernel's,
// the kernel's start to the agent's and to its first lookup. The kernel
// starts, by the host's clock, at the earliest (arrival - printk time) of
// its console lines: the console prints its first lines late, none early.
func (v *vm) reportBootTime(t *testing.T, lookupAt time.Time) {
	v.mu.Lock()
	var kernel, agent time.Time
	for _, l := range v.lines {
		if m := kernelStamp.FindStringSubmatch(l.text); m != nil {
			sec, _ := strconv.ParseFloat(m[1], 64)
			at := l.at.Add(-time.Duration(sec * float64(time.Second)))
			if kernel.IsZero() || at.Before(kernel) {
				kernel = at
			}
		}
		if agent.IsZero() && strings.Contains(l.text, banner) {
			agent = l.at
		}
	}
	v.mu.Unlock()
	if kernel.IsZero() || agent.IsZero() {
		t.Errorf("no kernel line or no %q on the console", banner)
		return
	}
	t.Logf("boot: qemu start to kernel start %.1f s; kernel start to agent start %.1f s, to first lookup %.1f s",
		kernel.Sub(v.started).Seconds(), agent.Sub(kernel).Seconds(), lookupAt.Sub(kernel).Seconds())
}

// fail ends the test with the console's last lines.
func (v *vm) fail(t *testing.T, msg string) {
	t.Helper()
	v.mu.Lock()
	lines := v.lines[max(0, len(v.lines)-80):]
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%6.1f %s\n", l.at.Sub(v.started).Seconds(), l.text)
	}
	v.mu.Unlock()
	t.Fatalf("%s; console (seconds since qemu's start):\n%s", msg, b.String())
}
