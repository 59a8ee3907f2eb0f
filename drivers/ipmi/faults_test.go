package ipmi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/ipmi/ipmisim"
)

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	n = withInfo(n, map[string]any{"ipmi_password": "not-the-password"})

	_, err := within(t, 3*time.Second, func() error {
		return New().SetPowerState(timeout(t, 10*time.Second), n, drivers.ActionPowerOn, 0)
	})
	checkError(t, err, n, "power on")
	if !errors.Is(err, ErrAuthentication) {
		t.Errorf("want ErrAuthentication, got %v", err)
	}
	if sim.State("power") != "" || len(sim.Calls()) != 0 {
		t.Errorf("nothing may reach the chassis without a session: %q", sim.Calls())
	}
}

func TestUnknownUser(t *testing.T) {
	t.Parallel()
	_, n := simNode(t)
	n = withInfo(n, map[string]any{"ipmi_username": "intruder"})

	_, err := New().PowerState(timeout(t, 10*time.Second), n)
	checkError(t, err, n, "power status")
	if !errors.Is(err, ErrAuthentication) {
		t.Errorf("want ErrAuthentication, got %v", err)
	}
}

func TestUserPrivilegeCanReadButNotChange(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	n = withInfo(n, map[string]any{
		"ipmi_username": ipmisim.ViewerUser, "ipmi_password": ipmisim.ViewerPassword, "ipmi_priv_level": "USER",
	})
	d := New()
	ctx := timeout(t, 10*time.Second)

	if st, err := d.PowerState(ctx, n); err != nil || st != drivers.PowerOff {
		t.Fatalf("a USER session can read the power state: got %q, %v", st, err)
	}
	err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0)
	checkError(t, err, n, "power on")
	if !strings.Contains(err.Error(), "privilege") {
		t.Errorf("error should mention the privilege: %v", err)
	}
	if sim.State("power") != "" || countCalls(sim, "set power") != 0 {
		t.Errorf("power must be unchanged: power=%q calls=%q", sim.State("power"), sim.Calls())
	}
}

func TestOperatorPrivilegeControlsPowerAndBoot(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	n = withInfo(n, map[string]any{
		"ipmi_username": ipmisim.OperatorUser, "ipmi_password": ipmisim.OperatorPassword, "ipmi_priv_level": "OPERATOR",
	})
	d := New()
	ctx := timeout(t, 10*time.Second)

	if err := d.SetBootDevice(ctx, n, drivers.BootPXE, false); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
		t.Fatal(err)
	}
	if sim.State("boot") != "pxe" || sim.State("power") != "1" {
		t.Errorf("boot=%q power=%q, want pxe and 1", sim.State("boot"), sim.State("power"))
	}
}

func TestWrongCipherSuite(t *testing.T) {
	t.Parallel()
	_, n := simNode(t)
	n = withInfo(n, map[string]any{"ipmi_cipher_suite": 17}) // ipmi_sim has no SHA-256 suites

	_, err := within(t, 5*time.Second, func() error {
		_, err := New().PowerState(timeout(t, 10*time.Second), n)
		return err
	})
	checkError(t, err, n, "power status")
}

func TestNothingListening(t *testing.T) {
	t.Parallel()
	n := drivers.Node{UUID: "u", Name: "no-bmc", DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": closedPort(t), "ipmi_username": "admin", "ipmi_password": "password",
	}}
	// The ICMP "port unreachable" ends the attempt at once; whatever
	// happens, the deadline bounds it.
	const deadline = 2 * time.Second
	_, err := within(t, deadline+500*time.Millisecond, func() error {
		_, err := New().PowerState(timeout(t, deadline), n)
		return err
	})
	checkError(t, err, n, "power status")
	if !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Errorf("error should name the BMC address: %v", err)
	}
}

func TestUnresolvableHost(t *testing.T) {
	t.Parallel()
	n := drivers.Node{UUID: "u", Name: "nx-bmc", DriverInfo: map[string]any{"ipmi_address": "bmc.invalid"}}
	_, err := within(t, 3*time.Second, func() error {
		_, err := New().PowerState(timeout(t, 2*time.Second), n)
		return err
	})
	checkError(t, err, n, "power status")
}

func TestHostNameAddress(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	sim.SetState("power", "1")
	n = withInfo(n, map[string]any{"ipmi_address": "localhost"})
	if st, err := New().PowerState(timeout(t, 10*time.Second), n); err != nil || st != drivers.PowerOn {
		t.Fatalf("got %q, %v", st, err)
	}
}

func TestHungBMCHonoursDeadline(t *testing.T) {
	t.Parallel()
	port, packets := silentBMC(t)
	// Per-request timeout and retries alone would wait 3 x 5 s.
	n := drivers.Node{UUID: "u", Name: "hung-bmc", DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_timeout": "5s", "ipmi_retries": 2,
	}}
	const deadline = 500 * time.Millisecond
	for _, op := range []struct {
		name string
		call func(context.Context) error
	}{
		{"power status", func(ctx context.Context) error { _, err := New().PowerState(ctx, n); return err }},
		{"power on", func(ctx context.Context) error { return New().SetPowerState(ctx, n, drivers.ActionPowerOn, 0) }},
		{"soft power off", func(ctx context.Context) error {
			return New().SetPowerState(ctx, n, drivers.ActionSoftPowerOff, time.Minute)
		}},
		{"get boot device", func(ctx context.Context) error { _, _, err := New().BootDevice(ctx, n); return err }},
		{"set boot device", func(ctx context.Context) error { return New().SetBootDevice(ctx, n, drivers.BootPXE, true) }},
	} {
		_, err := within(t, deadline+300*time.Millisecond, func() error { return op.call(timeout(t, deadline)) })
		checkError(t, err, n, op.name)
		if !isDeadline(err) {
			t.Errorf("%s: want context.DeadlineExceeded, got %v", op.name, err)
		}
	}
	if packets() == 0 {
		t.Error("the silent BMC received nothing: the test proves nothing")
	}
}

func TestHungBMCWithoutDeadlineIsBoundedByTimeout(t *testing.T) {
	t.Parallel()
	port, _ := silentBMC(t)
	n := drivers.Node{UUID: "u", Name: "hung-bmc", DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_timeout": "200ms", "ipmi_retries": 1,
	}}
	// No deadline: two attempts of 200 ms at the first request, then give up.
	took, err := within(t, 2*time.Second, func() error { _, err := New().PowerState(t.Context(), n); return err })
	checkError(t, err, n, "power status")
	if took < 350*time.Millisecond {
		t.Errorf("gave up after %s, before its two 200 ms attempts", took)
	}
}

func TestCancelStopsAtOnce(t *testing.T) {
	t.Parallel()
	port, _ := silentBMC(t)
	n := drivers.Node{UUID: "u", Name: "hung-bmc", DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_timeout": "10s",
	}}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := within(t, time.Second, func() error { _, err := New().PowerState(ctx, n); return err })
	checkError(t, err, n, "power status")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
}

func TestBMCHangsMidSession(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	n = withInfo(n, map[string]any{"ipmi_timeout": "5s"})
	// Session setup does not touch the chassis; the first chassis command
	// then blocks ipmi_sim, which stops answering with a session open.
	sim.SetState("hang", "30")

	const deadline = 800 * time.Millisecond
	_, err := within(t, deadline+400*time.Millisecond, func() error {
		return New().SetPowerState(timeout(t, deadline), n, drivers.ActionPowerOn, 0)
	})
	checkError(t, err, n, "power on")
	if !isDeadline(err) {
		t.Errorf("want context.DeadlineExceeded, got %v", err)
	}
	if countCalls(sim, "get power") != 1 {
		t.Errorf("the session should have been open and the BMC hung in a chassis call: %q", sim.Calls())
	}
}

// TestPasswordNeverInErrors drives every failure path with a distinctive
// password and checks no error text contains it.
func TestPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	const secret = "Zq7-secret-Pw!9"
	sim, simN := simNode(t)
	sim.SetState("power", "1")
	sim.SetState("ignore_shutdown", "")
	hungPort, _ := silentBMC(t)
	d := newTestDriver()

	nodes := map[string]drivers.Node{
		"wrong password": withInfo(simN, map[string]any{"ipmi_password": secret}),
		"wrong user":     withInfo(simN, map[string]any{"ipmi_username": "nobody", "ipmi_password": secret}),
		"hung BMC": {UUID: "u", Name: "hung", DriverInfo: map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": hungPort, "ipmi_password": secret, "ipmi_timeout": "100ms"}},
		"nothing listening": {UUID: "u", Name: "closed", DriverInfo: map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": closedPort(t), "ipmi_password": secret}},
		"bad driver_info": {UUID: "u", Name: "bad", DriverInfo: map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": "x", "ipmi_password": secret}},
		"password too long": {UUID: "u", Name: "long", DriverInfo: map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_password": secret + secret}},
	}
	var errs []error
	for name, n := range nodes {
		ctx := timeout(t, 2*time.Second)
		_, err := d.PowerState(ctx, n)
		errs = append(errs, fmt.Errorf("%s: %w", name, err), d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0))
		_, _, err = d.BootDevice(ctx, n)
		errs = append(errs, err, d.SetBootDevice(ctx, n, drivers.BootPXE, false))
		errs = append(errs, d.SetBootDevice(ctx, n, drivers.BootUEFIHTTP, false))
		errs = append(errs, New().ValidateInfo(n.DriverInfo))
	}
	// Failures after a good session: privilege refused, soft off timing out.
	viewer := withInfo(simN, map[string]any{"ipmi_username": ipmisim.ViewerUser, "ipmi_password": ipmisim.ViewerPassword, "ipmi_priv_level": "USER"})
	errs = append(errs, d.SetPowerState(t.Context(), viewer, drivers.ActionPowerOff, 0))
	errs = append(errs, d.SetPowerState(t.Context(), simN, drivers.ActionSoftPowerOff, 200*time.Millisecond))

	failures := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err)} {
			// (ipmisim.AdminPassword, "password", is part of key names.)
			if strings.Contains(text, secret) || strings.Contains(text, ipmisim.ViewerPassword) {
				t.Errorf("error shows a password: %s", text)
			}
		}
	}
	if failures < 30 {
		t.Errorf("only %d operations failed; the test is not exercising the failure paths", failures)
	}
}

// The tests below check that no goroutine outlives an operation. They do
// not call t.Parallel: Go runs them alone, so counting goroutines works.

func TestNoGoroutineLeftAfterOperations(t *testing.T) {
	sim := ipmisim.Start(t)
	hungPort, _ := silentBMC(t)
	good := drivers.Node{UUID: "u", Name: "good", DriverInfo: sim.DriverInfo()}
	hung := drivers.Node{UUID: "u", Name: "hung", DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": hungPort, "ipmi_timeout": "10s"}}
	wrong := withInfo(good, map[string]any{"ipmi_password": "wrong-password"})
	d := newTestDriver()
	baseline := runtime.NumGoroutine()

	if _, err := d.PowerState(timeout(t, 5*time.Second), good); err != nil {
		t.Fatal(err)
	}
	if err := d.SetBootDevice(timeout(t, 5*time.Second), good, drivers.BootPXE, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PowerState(timeout(t, 5*time.Second), wrong); err == nil {
		t.Fatal("wrong password accepted")
	}
	// A hung BMC: go-ipmi's read goroutine would wait 10 s for its read
	// deadline if the driver did not close the socket.
	if _, err := d.PowerState(timeout(t, 300*time.Millisecond), hung); err == nil {
		t.Fatal("hung BMC answered")
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := d.PowerState(ctx, hung); err == nil {
		t.Fatal("hung BMC answered")
	}
	expectNoLeakedGoroutines(t, baseline)
}

func TestNoGoroutineLeftWhenBMCHangsMidSession(t *testing.T) {
	sim := ipmisim.Start(t)
	n := drivers.Node{UUID: "u", Name: "hangs", DriverInfo: withInfo(drivers.Node{DriverInfo: sim.DriverInfo()}, map[string]any{"ipmi_timeout": "10s"}).DriverInfo}
	sim.SetState("hang", "30")
	baseline := runtime.NumGoroutine()

	if _, err := New().PowerState(timeout(t, 500*time.Millisecond), n); !isDeadline(err) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	expectNoLeakedGoroutines(t, baseline)
}
