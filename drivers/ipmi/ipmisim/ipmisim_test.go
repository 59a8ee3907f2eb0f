package ipmisim

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// answers reports whether something answers an RMCP ping at addr.
func answers(addr string) bool {
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	buf := make([]byte, 64)
	for range 3 {
		_, _ = conn.Write(rmcpPing)
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := conn.Read(buf); err == nil {
			return true
		}
	}
	return false
}

func TestStartGivesEachTestItsOwnSimulator(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Port == b.Port || a.ChassisDir == b.ChassisDir {
		t.Fatalf("simulators share port or state: %d %d %s %s", a.Port, b.Port, a.ChassisDir, b.ChassisDir)
	}
	for _, s := range []*Sim{a, b} {
		if s.Host != "127.0.0.1" || !answers(s.Addr()) {
			t.Errorf("simulator at %s does not answer on loopback", s.Addr())
		}
		if s.State("power") != "" || len(s.Calls()) != 0 {
			t.Errorf("fresh simulator has state: power=%q calls=%q", s.State("power"), s.Calls())
		}
	}
	a.SetState("power", "1")
	if a.State("power") != "1" || b.State("power") != "" {
		t.Errorf("state leaked between simulators")
	}
	a.RemoveState("power")
	a.RemoveState("power") // removing a missing file is fine
	if a.State("power") != "" {
		t.Error("RemoveState left the file")
	}
}

func TestStopEndsTheSimulator(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.SetState("hang", "30") // no chassis call is running, but be sure
	s.Stop()
	s.Stop() // idempotent
	select {
	case <-s.done:
	default:
		t.Fatal("ipmi_sim still running after Stop")
	}
	if answers(s.Addr()) {
		t.Error("something still answers after Stop")
	}
}

func TestDriverInfo(t *testing.T) {
	t.Parallel()
	s := Start(t)
	info := s.DriverInfo()
	if info["ipmi_address"] != "127.0.0.1" || info["ipmi_port"] != s.Port ||
		info["ipmi_username"] != AdminUser || info["ipmi_password"] != AdminPassword {
		t.Errorf("DriverInfo = %v", info)
	}
}

func TestGeneratedConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := writeConfig(dir, 40123); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "lan.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"addr 127.0.0.1 40123",
		`chassis_control "./chassiscontrol.sh 0x20"`,
		fmt.Sprintf(`user 2 true "%s" "%s" admin`, AdminUser, AdminPassword),
		fmt.Sprintf(`user 3 true "%s" "%s" operator`, OperatorUser, OperatorPassword),
		fmt.Sprintf(`user 4 true "%s" "%s" user`, ViewerUser, ViewerPassword),
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("lan.conf lacks %q:\n%s", want, conf)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "chassiscontrol.sh"))
	if err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Errorf("chassiscontrol.sh not executable: %v %v", st, err)
	}
}

// recordingTB records Skipf and Fatalf instead of ending the test.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                       {}
func (r *recordingTB) Skipf(format string, a ...any) { r.skipped = fmt.Sprintf(format, a...) }
func (r *recordingTB) Fatalf(format string, a ...any) {
	r.failed = fmt.Sprintf(format, a...)
}

// Not parallel: it changes PATH and CI.
func TestMissingBinarySkipsLocallyAndFailsInCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no ipmi_sim here

	t.Setenv("CI", "")
	local := &recordingTB{TB: t}
	Binary(local)
	if local.skipped == "" || local.failed != "" || !strings.Contains(local.skipped, "openipmi") {
		t.Errorf("without CI: skipped=%q failed=%q; want a skip naming the package", local.skipped, local.failed)
	}

	t.Setenv("CI", "true")
	ci := &recordingTB{TB: t}
	Binary(ci)
	if ci.failed == "" || ci.skipped != "" || !strings.Contains(ci.failed, "openipmi") {
		t.Errorf("with CI: skipped=%q failed=%q; want a failure naming the package", ci.skipped, ci.failed)
	}
}
