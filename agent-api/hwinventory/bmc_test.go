package hwinventory

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bmcCollector is a collector over a tree that has nothing but an IPMI
// device, for the BMC probe alone.
func bmcCollector(t *testing.T, opts Options) *collector {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dev/ipmi0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Root = root
	c, err := newCollector(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeIPMI answers ipmitool command lines from a map; others fail as a BMC
// refusing a channel does.
func fakeIPMI(calls *[]string, answers map[string]string) CommandRunner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		line := strings.Join(args, " ")
		*calls = append(*calls, line)
		if out, ok := answers[line]; ok {
			return []byte(out), nil
		}
		return nil, errors.New("exit status 1: Invalid channel")
	}
}

func TestBMCChannels(t *testing.T) {
	t.Parallel()
	lanPrint := func(ip, mac string) string {
		return "IP Address Source       : Static Address\nIP Address              : " + ip +
			"\nSubnet Mask             : 255.255.255.0\nMAC Address             : " + mac + "\n"
	}
	for _, tc := range []struct {
		name      string
		answers   map[string]string
		want      bmcAddresses
		wantCalls int
	}{
		{"first channel", map[string]string{"lan print 1": lanPrint("10.0.0.5", "AA:BB:CC:00:11:22")},
			bmcAddresses{v4: "10.0.0.5", mac: "aa:bb:cc:00:11:22"}, 1 + 11},
		{"unconfigured channels are skipped", map[string]string{
			"lan print 1": lanPrint("0.0.0.0", "aa:bb:cc:00:11:21"),
			"lan print 4": lanPrint("10.0.0.7", "aa:bb:cc:00:11:24"),
		}, bmcAddresses{v4: "10.0.0.7", mac: "aa:bb:cc:00:11:24"}, 4 + 11},
		{"nothing anywhere", map[string]string{}, bmcAddresses{}, 11 + 11},
		{"IPv6 only: the MAC of the channel that has it", map[string]string{
			"lan print 3":               lanPrint("0.0.0.0", "aa:bb:cc:00:11:23"),
			"lan6 print 3 enables":      "IPv6/IPv4 Addressing Enables: ipv6\n",
			"lan6 print 3 dynamic_addr": "IPv6 Dynamic Address 0:\n    Source/Type:    DHCPv6\n    Address:        ::/0\n    Status:         active\n",
			"lan6 print 3 static_addr":  "IPv6 Static Address 0:\n    Enabled:        yes\n    Address:        FD00:0:0::15/64\n    Status:         active\n",
		}, bmcAddresses{v6: "fd00::15", mac: "aa:bb:cc:00:11:23"}, 11 + 3 + 2}, // the MAC from lan print 3's answer
	} {
		var calls []string
		c := bmcCollector(t, Options{Run: fakeIPMI(&calls, tc.answers)})
		if got := c.bmc(context.Background()); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if len(calls) != tc.wantCalls {
			t.Errorf("%s: %d commands, want %d: %q", tc.name, len(calls), tc.wantCalls, calls)
		}
	}
}

// A BMC that does not answer costs one command's deadline, not eleven
// channels' worth of them.
func TestBMCThatHangs(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := bmcCollector(t, Options{
		CommandTimeout: 50 * time.Millisecond,
		Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			calls.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})
	start := time.Now()
	if got := c.bmc(context.Background()); got != (bmcAddresses{}) {
		t.Errorf("%+v from a hung BMC", got)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second || calls.Load() != 1 {
		t.Errorf("%d commands in %v, want 1 within its deadline", calls.Load(), elapsed)
	}
}

// All commands together stay within BMCTimeout.
func TestBMCOverallDeadline(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := bmcCollector(t, Options{
		CommandTimeout: time.Minute,
		BMCTimeout:     120 * time.Millisecond,
		Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			calls.Add(1)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond): // slow, refusing the channel
				return nil, errors.New("exit status 1")
			}
		},
	})
	start := time.Now()
	c.bmc(context.Background())
	if elapsed := time.Since(start); elapsed > 2*time.Second || calls.Load() > 4 {
		t.Errorf("%d commands in %v, want at most 4 within 120ms", calls.Load(), elapsed)
	}
}

func TestBMCWithoutIPMITool(t *testing.T) {
	t.Parallel()
	c := bmcCollector(t, Options{IPMITool: filepath.Join(t.TempDir(), "ipmitool")})
	start := time.Now()
	if got := c.bmc(context.Background()); got != (bmcAddresses{}) || time.Since(start) > 5*time.Second {
		t.Errorf("%+v after %v without ipmitool", got, time.Since(start))
	}
	if !c.ipmiStopped(t) {
		t.Error("a missing ipmitool was asked about every channel")
	}
}

// ipmiStopped reruns the probe counting the runs that reach exec.
func (c *collector) ipmiStopped(t *testing.T) bool {
	t.Helper()
	n := 0
	c.opts.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		n++
		return execRunner(ctx, name, args...)
	}
	c.bmc(context.Background())
	return n == 1
}

func TestExecRunner(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = execRunner(ctx, sleep, "10")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("sleep 10 with a 100ms deadline: %v after %v", err, time.Since(start))
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	out, err := execRunner(context.Background(), sh, "-c", "echo out; echo Invalid channel: 5 >&2; exit 1")
	if err == nil || !strings.Contains(err.Error(), "Invalid channel: 5") || out != nil {
		t.Errorf("failing command: %q, %v", out, err)
	}
	out, err = execRunner(context.Background(), sh, "-c", "head -c 3000000 /dev/zero")
	if err != nil || len(out) != maxCommandOutput {
		t.Errorf("large output: %d bytes, %v; want %d", len(out), err, maxCommandOutput)
	}
}

func TestParseLANPrint(t *testing.T) {
	t.Parallel()
	root := machineTree(t, "dell-r640-sata")
	text, err := os.ReadFile(filepath.Join(root, "commands/ipmitool lan print 1.out"))
	if err != nil {
		t.Fatal(err)
	}
	if ip, mac := parseLANPrint(string(text)); ip != "10.10.0.15" || mac != "d0:94:66:aa:bb:cc" {
		t.Errorf("recorded lan print: %q %q", ip, mac)
	}
	for text, want := range map[string][2]string{
		"IP Address : not an address\nMAC Address : 00:00:00:00:00:00\n": {"", ""},
		"IP Address Source : DHCP Address\n":                             {"", ""},
		"IP Address : fd00::1\n":                                         {"", ""},
	} {
		if ip, mac := parseLANPrint(text); ip != want[0] || mac != want[1] {
			t.Errorf("%q: %q %q, want %q", text, ip, mac, want)
		}
	}
}

func TestPickV6Address(t *testing.T) {
	t.Parallel()
	// IPA's samples.
	dynamic := "IPv6 Dynamic Address 0:\n    Source/Type:    DHCPv6\n    Address:        2001:1234:1234:1234:1234:1234:1234:1234/64\n    Status:         active\nIPv6 Dynamic Address 1:\n    Source/Type:    DHCPv6\n    Address:        ::/0\n    Status:         active\n"
	static := "IPv6 Static Address 0:\n    Enabled:        yes\n    Address:        2001:5678:5678:5678:5678:5678:5678:5678/64\n    Status:         active\nIPv6 Static Address 1:\n    Enabled:        no\n    Address:        ::/0\n    Status:         disabled\n"
	for _, tc := range []struct {
		text    string
		dynamic bool
		want    string
	}{
		{dynamic, true, "2001:1234:1234:1234:1234:1234:1234:1234"},
		{strings.ReplaceAll(dynamic, "active", "disabled"), true, ""},
		{strings.ReplaceAll(dynamic, "DHCPv6", "static"), true, ""},
		{static, false, "2001:5678:5678:5678:5678:5678:5678:5678"},
		{strings.Replace(static, "yes", "no", 1), false, ""},
		{"IPv6 Static Address 0:\n    Enabled: yes\n    Address: garbage\n    Status: active\n", false, ""},
		{"Invalid\n\tyaml", false, ""},
	} {
		if got := pickV6Address(tc.text, tc.dynamic); got != tc.want {
			t.Errorf("pickV6Address(%q, %v) = %q, want %q", tc.text, tc.dynamic, got, tc.want)
		}
	}
}
