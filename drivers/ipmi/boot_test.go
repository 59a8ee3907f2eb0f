package ipmi

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/drivers"
)

func TestSetBootDevice(t *testing.T) {
	t.Parallel()
	// ipmi_sim's chassis script names IPMI's "force hard drive" "default".
	for dev, file := range map[drivers.BootDevice]string{
		drivers.BootPXE: "pxe", drivers.BootDisk: "default", drivers.BootCDROM: "cdrom", drivers.BootBIOS: "bios",
	} {
		for _, persistent := range []bool{false, true} {
			name := string(dev)
			if persistent {
				name += "-persistent"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sim, n := simNode(t)
				d := New()
				ctx := timeout(t, 10*time.Second)
				if dev != drivers.BootBIOS {
					sim.SetState("boot", "bios") // start from something else
				}

				if err := d.SetBootDevice(ctx, n, dev, persistent); err != nil {
					t.Fatal(err)
				}
				if got := sim.State("boot"); got != file {
					t.Fatalf("boot file = %q, want %q", got, file)
				}
				got, _, err := d.BootDevice(ctx, n)
				if err != nil || got != dev {
					t.Fatalf("BootDevice = %q, %v; want %q", got, err, dev)
				}
				// Setting the device already set is not an error.
				if err := d.SetBootDevice(ctx, n, dev, persistent); err != nil {
					t.Fatalf("setting it again: %v", err)
				}
			})
		}
	}
}

func TestBootDeviceReadsBMC(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	ctx := timeout(t, 10*time.Second)
	for file, want := range map[string]drivers.BootDevice{"cdrom": drivers.BootCDROM, "pxe": drivers.BootPXE, "none": ""} {
		sim.SetState("boot", file)
		got, _, err := d.BootDevice(ctx, n)
		if err != nil || got != want {
			t.Errorf("boot file %q: BootDevice = %q, %v; want %q", file, got, err, want)
		}
	}
}

func TestSetBootDeviceUnsupported(t *testing.T) {
	t.Parallel()
	sim, n := simNode(t)
	d := New()
	for _, dev := range []drivers.BootDevice{drivers.BootSafe, drivers.BootUEFIHTTP, "floppy", ""} {
		err := d.SetBootDevice(timeout(t, 5*time.Second), n, dev, false)
		if !errors.Is(err, drivers.ErrNotSupported) {
			t.Errorf("%q: want ErrNotSupported, got %v", dev, err)
			continue
		}
		checkError(t, err, n, "set boot device")
	}
	if len(sim.Calls()) != 0 {
		t.Errorf("unsupported devices must not reach the BMC: %q", sim.Calls())
	}
}

func TestSupportedBootDevices(t *testing.T) {
	t.Parallel()
	got, err := New().SupportedBootDevices(t.Context(), drivers.Node{})
	want := []drivers.BootDevice{drivers.BootPXE, drivers.BootDisk, drivers.BootCDROM, drivers.BootBIOS}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	got[0] = "mutated"
	if again, _ := New().SupportedBootDevices(t.Context(), drivers.Node{}); again[0] != drivers.BootPXE {
		t.Error("callers can modify the driver's list")
	}
}

// goBMC is go-ipmi's in-process reference BMC. Unlike ipmi_sim it keeps the
// whole boot flags byte (valid, persistent, EFI), so tests can check them.
func goBMC(t *testing.T) (port int, hal *mock.HAL) {
	t.Helper()
	hal = mock.New()
	b := bmc.New(bmc.DeviceInfo{DeviceID: 32, IPMIVersion: 0x20, ManufacturerID: 0x157}, [16]byte{1, 2, 3}, hal, bmc.WithClock(clock.Real))
	u, err := b.Users.Add(2, "admin")
	if err != nil {
		t.Fatal(err)
	}
	u.SetPassword([]byte("password"))
	u.Enabled = true
	u.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}

	conn, err := udp.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(b, conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); _ = srv.Close(); _ = conn.Close(); <-done })
	return conn.LocalAddr().(*net.UDPAddr).Port, hal
}

func TestSetBootDeviceFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dev        drivers.BootDevice
		persistent bool
		bootMode   string
		wantSel    types.BootDeviceSelector
		wantEFI    bool
	}{
		{drivers.BootPXE, false, "uefi", types.BootDeviceSelectorForcePXE, true},
		{drivers.BootDisk, true, "uefi", types.BootDeviceSelectorForceHardDrive, true},
		{drivers.BootCDROM, true, "bios", types.BootDeviceSelectorForceCDROM, false},
		{drivers.BootBIOS, false, "bios", types.BootDeviceSelectorForceBIOSSetup, false},
	} {
		t.Run(string(tc.dev), func(t *testing.T) {
			t.Parallel()
			port, hal := goBMC(t)
			n := drivers.Node{UUID: "u", Name: "gobmc", DriverInfo: map[string]any{
				"ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password",
				"ipmi_timeout": "1s", "ipmi_boot_mode": tc.bootMode,
			}}
			d := New()
			ctx := timeout(t, 10*time.Second)
			if err := d.SetBootDevice(ctx, n, tc.dev, tc.persistent); err != nil {
				t.Fatal(err)
			}
			f, err := hal.Chassis().GetBootFlags(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !f.BootFlagsValid || f.Persist != tc.persistent || bool(f.BIOSBootType) != tc.wantEFI || f.BootDeviceSelector != tc.wantSel {
				t.Errorf("BMC holds valid=%v persist=%v efi=%v device=%v; want valid persist=%v efi=%v device=%v",
					f.BootFlagsValid, f.Persist, f.BIOSBootType, f.BootDeviceSelector, tc.persistent, tc.wantEFI, tc.wantSel)
			}
			dev, persistent, err := d.BootDevice(ctx, n)
			if err != nil || dev != tc.dev || persistent != tc.persistent {
				t.Errorf("BootDevice = %q, persistent %v, %v; want %q, %v", dev, persistent, err, tc.dev, tc.persistent)
			}
		})
	}
}
