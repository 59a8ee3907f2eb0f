package publicapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/public-api/publicapi"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

// newServerDrivers is newServer with the given drivers enabled.
func newServerDrivers(t *testing.T, names ...string) *server {
	t.Helper()
	db := pgtest.NewDB(t)
	reg := builtin.Registry()
	if err := reg.Enable(names); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := publicapi.New(conductor.New(db, reg, log, conductor.Options{}), publicapi.NewJWTAuth(testKeys, issuer), db, log)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &server{URL: srv.URL, DB: db}
}

// TestGophercloudMetal3NodeFields enrolls and updates a node with the
// fields Metal3's baremetal-operator sends through gophercloud: interfaces,
// automated_clean, resource_class, owner, network_data, then instance_uuid,
// instance_info and others in patches.
func TestGophercloudMetal3NodeFields(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := s.gopherClient(t, "admin")
	ctx := context.Background()
	noClean := false
	networkData := map[string]any{"links": []any{map[string]any{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:bb:cc"}},
		"networks": []any{}, "services": []any{}}
	n, err := nodes.Create(ctx, client, nodes.CreateOpts{
		Name: "metal3~worker-0", Driver: "fake",
		BIOSInterface: "no-bios", BootInterface: "pxe", DeployInterface: "direct", InspectInterface: "agent",
		ManagementInterface: "fake", PowerInterface: "fake", RAIDInterface: "no-raid", VendorInterface: "no-vendor",
		AutomatedClean: &noClean, ResourceClass: "baremetal", Owner: "tenant-a", NetworkData: networkData,
		Properties: map[string]any{"capabilities": "boot_mode:uefi", "cpu_arch": "x86_64"},
	}).Extract()
	if err != nil {
		t.Fatalf("create as Metal3 does: %v", err)
	}
	if n.BootInterface != "pxe" || n.DeployInterface != "direct" || n.InspectInterface != "agent" || n.RAIDInterface != "no-raid" ||
		n.VendorInterface != "no-vendor" || n.BIOSInterface != "no-bios" || n.PowerInterface != "fake" {
		t.Errorf("interfaces as created: %+v", n)
	}
	if n.ConsoleInterface != "fake" || n.NetworkInterface != "noop" || n.StorageInterface != "noop" || n.RescueInterface != "fake" {
		t.Errorf("interfaces not given should be the driver's defaults: console %q network %q storage %q rescue %q",
			n.ConsoleInterface, n.NetworkInterface, n.StorageInterface, n.RescueInterface)
	}
	if n.AutomatedClean == nil || *n.AutomatedClean || n.ResourceClass != "baremetal" || n.Owner != "tenant-a" || len(n.NetworkData["links"].([]any)) != 1 {
		t.Errorf("fields as created: automated_clean %v resource_class %q owner %q network_data %v", n.AutomatedClean, n.ResourceClass, n.Owner, n.NetworkData)
	}

	instance := "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	updated, err := nodes.Update(ctx, client, n.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/automated_clean", Value: true},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_uuid", Value: instance},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: "http://images/os.qcow2"},
		nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/boot_interface", Value: "fake"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/description", Value: "rack 4"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/retired", Value: true},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/retired_reason", Value: "end of lease"},
		nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/network_data"},
	}).Extract()
	if err != nil {
		t.Fatalf("update as Metal3 does: %v", err)
	}
	if updated.AutomatedClean == nil || !*updated.AutomatedClean || updated.InstanceUUID != instance || updated.BootInterface != "fake" ||
		updated.Description != "rack 4" || !updated.Retired || updated.RetiredReason != "end of lease" || len(updated.NetworkData) != 0 {
		t.Errorf("after update: %+v", updated)
	}

	for name, opts := range map[string]nodes.CreateOpts{
		"Could not find the following interface in the 'ironic.hardware.interfaces.boot' entrypoint: warp": {Driver: "fake", BootInterface: "warp"},
		"firmware_interface": {Driver: "fake", FirmwareInterface: "fake"},
		"Invalid network_data: 'networks' is a required property": {Driver: "fake", NetworkData: map[string]any{"links": []any{}}},
	} {
		_, err := nodes.Create(ctx, client, opts).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), name) {
			t.Errorf("create %+v: %v, want 400 %q", opts, err, name)
		}
	}
}

// TestNodeFieldsRules covers Ironic's rules for the node fields: versions,
// protected and retired, interfaces and the driver, instance_uuid at
// creation, found by the filter on the unversioned path the tempest
// plugin uses.
func TestNodeFieldsRules(t *testing.T) {
	t.Parallel()
	s := newServerDrivers(t, "fake", "ipmi")
	h := latest(t)
	instance := "7d3b1c0e-4c1f-4f3a-9a57-2f1c2f0b9e11"
	id := s.createNode(t, `{"driver": "fake", "instance_uuid": "`+instance+`", "vendor_interface": "fake"}`)
	found := jsonOf(t, must(t, s.do(t, "GET", "/nodes/detail?instance_uuid="+instance, "", h...), 200))
	if list := found["nodes"].([]any); len(list) != 1 || list[0].(map[string]any)["uuid"] != id {
		t.Errorf("nodes by instance_uuid on /nodes/detail: %v", found)
	}

	must(t, s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "boot_interface": "pxe"}`, as(t, "admin", "1.30")...), 406)
	must(t, s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "automated_clean": "maybe"}`, h...), 400)
	if d := jsonOf(t, must(t, s.do(t, "POST", "/v1/nodes", `{"driver": "fake", "automated_clean": "False"}`, h...), 201)); d["automated_clean"] != false {
		t.Errorf("automated_clean \"False\" (a string, as Ironic takes): %v", d["automated_clean"])
	}
	if d := jsonOf(t, must(t, s.do(t, "GET", "/v1/nodes/"+id, "", as(t, "admin", "1.30")...), 200)); d["boot_interface"] != nil {
		t.Errorf("boot_interface shown at 1.30: %v", d["boot_interface"])
	}

	// protected only when active; its reason only when protected; a
	// protected node is not deleted.
	r := must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/protected", "value": true}]`, h...), 409)
	if !strings.Contains(string(r.body), "can only be made protected in provision states") {
		t.Errorf("protected in enroll: %s", r.body)
	}
	if _, err := s.DB.Exec(`UPDATE nodes SET provision_state = 'active' WHERE uuid = $1`, id); err != nil {
		t.Fatal(err)
	}
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/protected_reason", "value": "x"}]`, h...), 400)
	d := jsonOf(t, must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/protected", "value": true}, {"op": "add", "path": "/protected_reason", "value": "prod"}]`, h...), 200))
	if d["protected"] != true || d["protected_reason"] != "prod" {
		t.Errorf("protected: %v %v", d["protected"], d["protected_reason"])
	}
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/maintenance", "value": true}, {"op": "remove", "path": "/instance_uuid"}]`, h...), 200)
	if r := must(t, s.do(t, "DELETE", "/v1/nodes/"+id, "", h...), 403); !strings.Contains(string(r.body), "is protected") {
		t.Errorf("delete of a protected node: %s", r.body)
	}
	d = jsonOf(t, must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "replace", "path": "/protected", "value": false}]`, h...), 200))
	if d["protected"] != false || d["protected_reason"] != nil {
		t.Errorf("unprotected: %v %v, want the reason cleared", d["protected"], d["protected_reason"])
	}
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "replace", "path": "/maintenance", "value": false}]`, h...), 200)
	if _, err := s.DB.Exec(`UPDATE nodes SET provision_state = 'available' WHERE uuid = $1`, id); err != nil {
		t.Fatal(err)
	}
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/retired", "value": true}]`, h...), 409)
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/retired_reason", "value": "old"}]`, h...), 400)
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id, `[{"op": "add", "path": "/traits", "value": ["CUSTOM_X"]}]`, h...), 400)

	// A new driver keeps the interfaces, which must suit it, unless
	// reset_interfaces (1.45) gives it its defaults.
	toIPMI := `[{"op": "replace", "path": "/driver", "value": "ipmi"}]`
	r = must(t, s.do(t, "PATCH", "/v1/nodes/"+id, toIPMI, h...), 400)
	if !strings.Contains(string(r.body), "is not supported by hardware type ipmi") {
		t.Errorf("driver change keeping fake interfaces: %s", r.body)
	}
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id+"?reset_interfaces=true", toIPMI, as(t, "admin", "1.44")...), 406)
	must(t, s.do(t, "PATCH", "/v1/nodes/"+id+"?reset_interfaces=true", `[{"op": "add", "path": "/extra/a", "value": 1}]`, h...), 400)
	d = jsonOf(t, must(t, s.do(t, "PATCH", "/v1/nodes/"+id+"?reset_interfaces=true", toIPMI, h...), 200))
	if d["driver"] != "ipmi" || d["power_interface"] != "ipmitool" || d["vendor_interface"] != "no-vendor" || d["boot_interface"] != "pxe" {
		t.Errorf("after reset_interfaces: driver %v power %v vendor %v boot %v", d["driver"], d["power_interface"], d["vendor_interface"], d["boot_interface"])
	}

	// Drivers list what they offer, the default first.
	drv := jsonOf(t, must(t, s.do(t, "GET", "/v1/drivers/fake", "", h...), 200))
	if fmt.Sprint(drv["enabled_boot_interfaces"]) != "[fake pxe]" || drv["default_boot_interface"] != "fake" ||
		fmt.Sprint(drv["enabled_console_interfaces"]) != "[fake no-console]" {
		t.Errorf("fake driver: boot %v (default %v), console %v", drv["enabled_boot_interfaces"], drv["default_boot_interface"], drv["enabled_console_interfaces"])
	}
}
