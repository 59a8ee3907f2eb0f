package redfish

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

func TestSetAndReadBootDevice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		dev    drivers.BootDevice
		target string
	}{
		{drivers.BootPXE, "Pxe"}, {drivers.BootDisk, "Hdd"}, {drivers.BootCDROM, "Cd"},
		{drivers.BootBIOS, "BiosSetup"}, {drivers.BootUEFIHTTP, "UefiHttp"},
	}
	for _, c := range cases {
		for _, persistent := range []bool{false, true} {
			b := newBMC(t, redfishsim.Options{})
			d, _ := newDriver(t, Options{})
			n := b.node(nil)
			ctx := ctxWithTimeout(t, 5*time.Second)
			if err := d.SetBootDevice(ctx, n, c.dev, persistent); err != nil {
				t.Fatalf("SetBootDevice(%s, %v): %v", c.dev, persistent, err)
			}
			wantEnabled := map[bool]string{false: "Once", true: "Continuous"}[persistent]
			if got := b.sim.Boot("1"); got.Target != c.target || got.Enabled != wantEnabled {
				t.Fatalf("%s persistent=%v: BMC holds %+v", c.dev, persistent, got)
			}
			patch := b.sim.LastPatch("1")["Boot"].(map[string]any)
			if _, sent := patch["BootSourceOverrideMode"]; sent || len(patch) != 2 {
				t.Fatalf("PATCH sent %v; want only target and enabled", patch)
			}
			dev, gotPersistent, err := d.BootDevice(ctx, n)
			if err != nil || dev != c.dev || gotPersistent != persistent {
				t.Fatalf("BootDevice = %q, %v, %v; want %q, %v", dev, gotPersistent, err, c.dev, persistent)
			}
		}
	}
}

func TestBootModeIsSentOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string]string{"uefi": "UEFI", "bios": "Legacy"} {
		b := newBMC(t, redfishsim.Options{})
		d, _ := newDriver(t, Options{})
		if err := d.SetBootDevice(ctxWithTimeout(t, 5*time.Second), b.node(map[string]any{keyBootMode: mode}), drivers.BootPXE, true); err != nil {
			t.Fatal(err)
		}
		patch := b.sim.LastPatch("1")["Boot"].(map[string]any)
		if patch["BootSourceOverrideMode"] != want || b.sim.Boot("1").Mode != want {
			t.Fatalf("mode %s: PATCH %v, BMC %+v", mode, patch, b.sim.Boot("1"))
		}
	}
}

func TestSettingTheSameBootDeviceAgainSendsNothing(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	n := b.node(nil)
	ctx := ctxWithTimeout(t, 5*time.Second)
	for range 3 {
		if err := d.SetBootDevice(ctx, n, drivers.BootPXE, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.sim.RequestCount("PATCH", "/redfish/v1/Systems/1"); got != 1 {
		t.Fatalf("%d PATCHes for the same setting three times", got)
	}
	if err := d.SetBootDevice(ctx, n, drivers.BootPXE, true); err != nil {
		t.Fatal(err)
	}
	if got := b.sim.RequestCount("PATCH", "/redfish/v1/Systems/1"); got != 2 {
		t.Fatalf("changing once to persistent sent %d PATCHes in all, want 2", got)
	}
}

func TestOneTimeBootIsUsedByTheNextBoot(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	n := b.node(nil)
	ctx := ctxWithTimeout(t, 5*time.Second)
	if err := d.SetBootDevice(ctx, n, drivers.BootPXE, false); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0); err != nil {
		t.Fatal(err)
	}
	if got := b.sim.Boots("1"); !slices.Equal(got, []string{"Pxe"}) {
		t.Fatalf("boots %v, want one from Pxe", got)
	}
	dev, persistent, err := d.BootDevice(ctx, n)
	if err != nil || dev != "" || persistent {
		t.Fatalf("after the one-time boot: %q, %v, %v; want no override", dev, persistent, err)
	}
}

func TestBootDeviceWithAnOverrideFerricCannotName(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{BootTargets: []string{"None", "Pxe", "Usb"}})
	d, _ := newDriver(t, Options{})
	patchSystem(t, b, `{"Boot": {"BootSourceOverrideTarget": "Usb", "BootSourceOverrideEnabled": "Continuous"}}`)
	_, _, err := d.BootDevice(ctxWithTimeout(t, 5*time.Second), b.node(nil))
	assertCleanError(t, err, "read boot device")
	wantNotSupported(t, err)
	if !strings.Contains(err.Error(), `"Usb"`) {
		t.Fatalf("error does not name the override: %v", err)
	}
}

func TestSupportedBootDevices(t *testing.T) {
	t.Parallel()
	cases := []struct {
		targets []string
		omit    bool
		want    []drivers.BootDevice
	}{
		{nil, false, []drivers.BootDevice{"pxe", "disk", "cdrom", "bios", "uefihttp"}},
		{[]string{"None", "Hdd", "Pxe", "Usb"}, false, []drivers.BootDevice{"pxe", "disk"}},
		{[]string{"None", "Pxe"}, true, []drivers.BootDevice{"pxe", "disk", "cdrom", "bios", "uefihttp"}},
	}
	for _, c := range cases {
		b := newBMC(t, redfishsim.Options{BootTargets: c.targets, OmitAllowableValues: c.omit})
		d, _ := newDriver(t, Options{})
		got, err := d.SupportedBootDevices(ctxWithTimeout(t, 5*time.Second), b.node(nil))
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("targets %v omit=%v: %v, %v; want %v", c.targets, c.omit, got, err, c.want)
		}
	}
}

func TestUnsupportedBootDevices(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{BootTargets: []string{"None", "Pxe", "Hdd"}})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)

	err := d.SetBootDevice(ctx, b.node(nil), drivers.BootSafe, false)
	assertCleanError(t, err, `set boot device "safe"`)
	wantNotSupported(t, err)
	if b.sim.Requests() != 0 {
		t.Fatalf("a device without a Redfish target reached the BMC: %d requests", b.sim.Requests())
	}

	err = d.SetBootDevice(ctx, b.node(nil), drivers.BootCDROM, true)
	assertCleanError(t, err, `set boot device "cdrom"`)
	wantNotSupported(t, err)
	if !strings.Contains(err.Error(), "the BMC allows boot targets None, Pxe, Hdd, not Cd") {
		t.Fatalf("error does not list the allowed targets: %v", err)
	}
	if got := b.sim.RequestCount("PATCH", "/redfish/v1/Systems/1"); got != 0 {
		t.Fatalf("%d PATCHes for a disallowed target", got)
	}
	if got := b.sim.Boot("1"); got.Target != "None" {
		t.Fatalf("boot changed: %+v", got)
	}
}

func TestBMCRefusingTheBootPatch(t *testing.T) {
	t.Parallel()
	// Without the annotation the driver cannot know; the BMC's 400 is the answer.
	b := newBMC(t, redfishsim.Options{BootTargets: []string{"None", "Pxe"}, OmitAllowableValues: true})
	d, _ := newDriver(t, Options{})
	err := d.SetBootDevice(ctxWithTimeout(t, 5*time.Second), b.node(nil), drivers.BootUEFIHTTP, false)
	assertCleanError(t, err, `set boot device "uefihttp"`)
	if !strings.Contains(err.Error(), "PATCH /redfish/v1/Systems/1: HTTP 400 Bad Request") ||
		!strings.Contains(err.Error(), "not in the list of acceptable values") {
		t.Fatalf("error does not carry the BMC's answer: %v", err)
	}
}
