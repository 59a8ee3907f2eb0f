// Package ipmisim runs OpenIPMI's ipmi_sim as a BMC for tests: one
// simulator per test, on a free UDP port on 127.0.0.1, with fresh
// temporary state, stopped when the test ends.
//
// Chassis power and boot state are plain files the test can read and write
// (see Sim.State): power (0|1), boot (none|pxe|default|cdrom|bios; "default"
// is what IPMI calls "force hard drive"), resets (count of hard resets) and
// calls.log (every chassis call ipmi_sim made). Two more files inject
// faults: ignore_shutdown (soft shutdown does nothing) and hang (each
// chassis call first sleeps that many seconds, so the BMC stops answering).
//
// ipmi_sim comes from the Debian package openipmi. Without it, Start skips
// the test, unless the environment variable CI is set: then it fails, so CI
// cannot silently skip these tests.
package ipmisim

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/ferric-metal/ferric/shared/syncbuf"
)

// Users configured in every simulator.
const (
	// AdminUser may do everything.
	AdminUser     = "admin"
	AdminPassword = "password"
	// OperatorUser has OPERATOR privilege: power and boot control.
	OperatorUser     = "operator"
	OperatorPassword = "operatorpw"
	// ViewerUser has USER privilege: reads only.
	ViewerUser     = "viewer"
	ViewerPassword = "viewerpw"
)

var (
	//go:embed files/lan.conf.tmpl
	lanConfTemplate string
	//go:embed files/bmc.emu
	bmcEmu []byte
	//go:embed files/chassiscontrol.sh
	chassisControl []byte
)

// startTimeout bounds waiting for a new ipmi_sim to answer.
const startTimeout = 10 * time.Second

// Sim is one running ipmi_sim.
type Sim struct {
	// Host and Port are where the simulated BMC listens (UDP).
	Host string
	Port int
	// ChassisDir holds the chassis state files.
	ChassisDir string

	t      testing.TB
	cmd    *exec.Cmd
	output *syncbuf.Buffer
	done   chan struct{} // closed when the process has exited
	stop   sync.Once
}

// Binary returns the path of ipmi_sim, or skips the test if it is missing
// (fails it if the environment variable CI is set).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("ipmi_sim")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("ipmi_sim not found (%v) and CI is set: install the Debian package openipmi", err)
		return ""
	}
	t.Skipf("ipmi_sim not found (%v): install the Debian package openipmi to run this test", err)
	return ""
}

// Start starts a simulator for this test and stops it when the test ends.
func Start(t testing.TB) *Sim {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	// The free port is found by binding and releasing it, so another process
	// may take it before ipmi_sim binds: retry with a new port.
	for range 5 {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("ipmisim: starting ipmi_sim: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Sim, error) {
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	confDir, stateDir, chassisDir := t.TempDir(), t.TempDir(), t.TempDir()
	if err := writeConfig(confDir, port); err != nil {
		return nil, err
	}

	s := &Sim{
		Host: "127.0.0.1", Port: port, ChassisDir: chassisDir,
		t: t, output: &syncbuf.Buffer{}, done: make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "-n", "-c", "lan.conf", "-f", "bmc.emu", "-s", stateDir)
	s.cmd.Dir = confDir // lan.conf names ./chassiscontrol.sh
	s.cmd.Env = append(os.Environ(), "CHASSIS_STATE_DIR="+chassisDir)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	setProcessGroup(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; ipmi_sim output: %s", err, s.output.String())
	}
	// Registered after the TempDirs, so it runs before they are removed.
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("ipmi_sim on port %d output:\n%s\ncalls.log:\n%s", s.Port, s.output.String(), s.State("calls.log"))
		}
	})
	return s, nil
}

func writeConfig(dir string, port int) error {
	tmpl, err := template.New("lan.conf").Parse(lanConfTemplate)
	if err != nil {
		return err
	}
	type user struct {
		Number                    int
		Name, Password, Privilege string
	}
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, map[string]any{
		"Port": port,
		"Users": []user{
			{2, AdminUser, AdminPassword, "admin"},
			{3, OperatorUser, OperatorPassword, "operator"},
			{4, ViewerUser, ViewerPassword, "user"},
		},
	}); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"lan.conf", conf.Bytes(), 0o644},
		{"bmc.emu", bmcEmu, 0o644},
		{"chassiscontrol.sh", chassisControl, 0o755},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// rmcpPing is an ASF Presence Ping (RMCP class 6, IPMI spec 13.2.3).
var rmcpPing = []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x00, 0x00, 0x00}

// waitReady pings the simulator until it answers, exits or startTimeout passes.
func (s *Sim) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := net.Dial("udp4", s.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 64)
	for ctx.Err() == nil {
		select {
		case <-s.done:
			return errors.New("ipmi_sim exited at start")
		default:
		}
		if _, err := conn.Write(rmcpPing); err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := conn.Read(buf); err == nil && n >= 4 && buf[3] == 0x06 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // "connection refused" returns at once
	}
	return fmt.Errorf("ipmi_sim did not answer on %s within %s", s.Addr(), startTimeout)
}

// Addr is host:port of the simulated BMC.
func (s *Sim) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DriverInfo returns ipmi driver_info for this BMC as the admin user, with
// a per-request timeout short enough for tests.
func (s *Sim) DriverInfo() map[string]any {
	return map[string]any{
		"ipmi_address":  s.Host,
		"ipmi_port":     s.Port,
		"ipmi_username": AdminUser,
		"ipmi_password": AdminPassword,
		"ipmi_timeout":  "1s",
		"ipmi_retries":  1,
	}
}

// State returns a chassis state file's content without surrounding white
// space, or "" if the file does not exist.
func (s *Sim) State(name string) string {
	b, err := os.ReadFile(filepath.Join(s.ChassisDir, name))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.t.Errorf("ipmisim: reading %s: %v", name, err)
		}
		return ""
	}
	return strings.TrimSpace(string(b))
}

// SetState writes a chassis state file (e.g. "power" "1", or "hang" "30").
func (s *Sim) SetState(name, value string) {
	// Written aside and renamed into place: ipmi_sim's chassis script may
	// read the file at any moment, and must never see it empty.
	tmp := filepath.Join(s.ChassisDir, "."+name+".new")
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o644); err != nil {
		s.t.Fatalf("ipmisim: writing %s: %v", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.ChassisDir, name)); err != nil {
		s.t.Fatalf("ipmisim: writing %s: %v", name, err)
	}
}

// RemoveState deletes a chassis state file (e.g. to end a "hang").
func (s *Sim) RemoveState(name string) {
	if err := os.Remove(filepath.Join(s.ChassisDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.t.Fatalf("ipmisim: removing %s: %v", name, err)
	}
}

// Calls returns the chassis calls ipmi_sim made so far, one per line, such
// as "0x20 set power 1".
func (s *Sim) Calls() []string {
	log := s.State("calls.log")
	if log == "" {
		return nil
	}
	return strings.Split(log, "\n")
}

// Output returns what ipmi_sim printed so far.
func (s *Sim) Output() string { return s.output.String() }

// Stop kills the simulator and its chassis scripts and waits for it to
// exit. It is safe to call more than once; the test cleanup calls it too.
func (s *Sim) Stop() {
	s.stop.Do(func() {
		killProcessGroup(s.cmd)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.t.Errorf("ipmisim: ipmi_sim (pid %d) did not exit", s.cmd.Process.Pid)
		}
	})
}
