package redfish

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

func TestVendorMethodsAreDeclared(t *testing.T) {
	t.Parallel()
	d := New()
	defer d.Close()
	methods := d.VendorMethods()
	if len(methods) != 2 {
		t.Fatalf("methods %v", methods)
	}
	bios, eject := methods[0], methods[1]
	if bios.Name != "bios_attributes" || !slices.Equal(bios.HTTPMethods, []string{"GET"}) || bios.Async || bios.Description == "" {
		t.Fatalf("bios_attributes declared as %+v", bios)
	}
	if eject.Name != "eject_virtual_media" || !slices.Equal(eject.HTTPMethods, []string{"POST"}) || !eject.Async || !eject.RequireExclusiveLock {
		t.Fatalf("eject_virtual_media declared as %+v", eject)
	}
}

func TestBIOSAttributes(t *testing.T) {
	t.Parallel()
	attrs := map[string]any{"BootMode": "Uefi", "LogicalProc": "Enabled", "MemTest": false, "Cores": 32.0}
	b := newBMC(t, redfishsim.Options{BIOSAttributes: attrs})
	d, _ := newDriver(t, Options{})
	got, err := d.CallVendor(ctxWithTimeout(t, 5*time.Second), b.node(nil), "bios_attributes", "GET", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, attrs) {
		t.Fatalf("attributes %v, want %v", got, attrs)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Fatalf("result does not render as JSON: %v", err)
	}
}

func TestEjectVirtualMedia(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{VirtualMediaImage: "http://10.1.1.1/images/deploy.iso"})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)
	n := b.node(nil)

	got, err := d.CallVendor(ctx, n, "eject_virtual_media", "POST", json.RawMessage(`{"media_type": "usbstick"}`))
	if err != nil || len(got.(*EjectResult).Ejected) != 0 {
		t.Fatalf("filtered eject: %v, %v", got, err)
	}
	if _, inserted := b.sim.VirtualMedia(); !inserted {
		t.Fatal("a CD was ejected by a USBStick-only request")
	}

	got, err = d.CallVendor(ctx, n, "eject_virtual_media", "POST", json.RawMessage(`{"media_type": "cd"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/redfish/v1/Managers/BMC/VirtualMedia/Cd"}; !slices.Equal(got.(*EjectResult).Ejected, want) {
		t.Fatalf("ejected %v, want %v", got, want)
	}
	if image, inserted := b.sim.VirtualMedia(); inserted || image != "" || b.sim.Ejects() != 1 {
		t.Fatalf("after eject: image %q inserted %v ejects %d", image, inserted, b.sim.Ejects())
	}

	// Nothing inserted: success, no action sent.
	got, err = d.CallVendor(ctx, n, "eject_virtual_media", "POST", nil)
	if err != nil || len(got.(*EjectResult).Ejected) != 0 || b.sim.Ejects() != 1 {
		t.Fatalf("second eject: %v, %v, ejects %d", got, err, b.sim.Ejects())
	}
}

func TestVendorMisuse(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	ctx := ctxWithTimeout(t, 5*time.Second)

	_, err := d.CallVendor(ctx, b.node(nil), "reflash_firmware", "POST", nil)
	assertCleanError(t, err, "vendor method reflash_firmware")
	wantNotSupported(t, err)

	_, err = d.CallVendor(ctx, b.node(nil), "bios_attributes", "POST", nil)
	assertCleanError(t, err, "vendor method bios_attributes")
	wantNotSupported(t, err)

	_, err = d.CallVendor(ctx, b.node(nil), "eject_virtual_media", "POST", json.RawMessage(`{"device": "cd"}`))
	assertCleanError(t, err, "vendor method eject_virtual_media")
	if !strings.Contains(err.Error(), `unknown field "device"`) {
		t.Fatalf("bad body: %v", err)
	}
	if b.sim.Requests() != 0 {
		t.Fatalf("misuse reached the BMC: %d requests", b.sim.Requests())
	}
}
