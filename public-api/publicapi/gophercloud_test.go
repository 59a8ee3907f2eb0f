package publicapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/conductors"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestGophercloudNodesAndPorts drives the API with gophercloud's baremetal
// client, as Metal3 and Terraform providers do.
func TestGophercloudNodesAndPorts(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := s.gopherClient(t, "admin")
	ctx := context.Background()

	created, err := nodes.Create(ctx, client, nodes.CreateOpts{
		Name:       "rack1-u07",
		Driver:     "fake",
		DriverInfo: map[string]any{"fake_power": "power off", "ipmi_password": "hunter2", "nested": map[string]any{"api_token": "x"}},
		Properties: map[string]any{"cpus": 8.0},
	}).Extract()
	if err != nil {
		t.Fatalf("create node: %v", err)
	}
	if created.UUID == "" || created.Name != "rack1-u07" || created.Driver != "fake" {
		t.Fatalf("created node = %+v", created)
	}
	if created.ProvisionState != "enroll" {
		t.Errorf("provision_state = %q, want enroll at version >= 1.11", created.ProvisionState)
	}
	if created.DriverInfo["ipmi_password"] != "******" {
		t.Errorf("driver_info password not masked: %v", created.DriverInfo["ipmi_password"])
	}
	if nested, _ := created.DriverInfo["nested"].(map[string]any); nested["api_token"] != "******" {
		t.Errorf("nested token not masked: %v", created.DriverInfo["nested"])
	}
	if created.CreatedAt.IsZero() {
		t.Error("created_at not decoded")
	}

	byName, err := nodes.Get(ctx, client, "rack1-u07").Extract()
	if err != nil {
		t.Fatalf("get by name: %v", err)
	}
	if byName.UUID != created.UUID {
		t.Errorf("get by name: uuid %s, want %s", byName.UUID, created.UUID)
	}

	updated, err := nodes.Update(ctx, client, created.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/driver_info/ipmi_address", Value: "10.0.0.7"},
		nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/properties/cpus", Value: 16},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/resource_class", Value: "bm.large"},
	}).Extract()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.DriverInfo["ipmi_address"] != "10.0.0.7" || updated.DriverInfo["ipmi_password"] != "******" ||
		updated.Properties["cpus"] != 16.0 || updated.ResourceClass != "bm.large" {
		t.Errorf("updated node = %+v", updated)
	}
	var stored string
	if err := s.DB.Get(&stored, `SELECT driver_info->>'ipmi_password' FROM nodes WHERE uuid = $1`, created.UUID); err != nil || stored != "hunter2" {
		t.Errorf("the stored password after a patch elsewhere = %q, %v; want it kept", stored, err)
	}

	if err := nodes.SetMaintenance(ctx, client, created.UUID, nodes.MaintenanceOpts{Reason: "fan"}).ExtractErr(); err != nil {
		t.Fatalf("set maintenance: %v", err)
	}
	got, err := nodes.Get(ctx, client, created.UUID).Extract()
	if err != nil || !got.Maintenance || got.MaintenanceReason != "fan" {
		t.Errorf("after set maintenance: %+v, %v", got, err)
	}
	var inMaintenance []nodes.Node
	err = nodes.List(client, nodes.ListOpts{Maintenance: true}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ns, err := nodes.ExtractNodes(p)
		inMaintenance = append(inMaintenance, ns...)
		return true, err
	})
	if err != nil || len(inMaintenance) != 1 {
		t.Errorf("list maintenance=true: %d nodes, %v", len(inMaintenance), err)
	}
	if err := nodes.UnsetMaintenance(ctx, client, created.UUID).ExtractErr(); err != nil {
		t.Fatalf("unset maintenance: %v", err)
	}
	if got, _ := nodes.Get(ctx, client, created.UUID).Extract(); got.Maintenance || got.MaintenanceReason != "" {
		t.Errorf("after unset maintenance: %v %q", got.Maintenance, got.MaintenanceReason)
	}

	validation, err := nodes.Validate(ctx, client, created.UUID).Extract()
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	if !validation.Power.Result || !validation.Management.Result || !validation.Deploy.Result {
		t.Errorf("validate = %+v, want power, management and deploy true for the fake driver", validation)
	}

	pxe := true
	port, err := ports.Create(ctx, client, ports.CreateOpts{
		NodeUUID: created.UUID, Address: "52:54:00:AB:CD:EF", PXEEnabled: &pxe,
	}).Extract()
	if err != nil {
		t.Fatalf("create port: %v", err)
	}
	if port.Address != "52:54:00:ab:cd:ef" || port.NodeUUID != created.UUID {
		t.Errorf("port = %+v, want the lower-cased MAC on the node", port)
	}

	_, err = ports.Create(ctx, client, ports.CreateOpts{NodeUUID: created.UUID, Address: "52-54-00-ab-cd-ef"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("duplicate MAC (other notation): err = %v, want 409", err)
	}

	var listed []ports.Port
	err = ports.List(client, ports.ListOpts{Address: "52:54:00:ab:cd:ef"}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ps, err := ports.ExtractPorts(p)
		listed = append(listed, ps...)
		return true, err
	})
	if err != nil || len(listed) != 1 || listed[0].UUID != port.UUID {
		t.Errorf("list ports by address: %v %+v", err, listed)
	}
	movedPort, err := ports.Update(ctx, client, port.UUID, ports.UpdateOpts{
		ports.UpdateOperation{Op: ports.ReplaceOp, Path: "/address", Value: "52:54:00:AB:CD:00"},
		ports.UpdateOperation{Op: ports.AddOp, Path: "/extra/switch", Value: "tor-1"},
	}).Extract()
	if err != nil || movedPort.Address != "52:54:00:ab:cd:00" || movedPort.Extra["switch"] != "tor-1" {
		t.Errorf("update port: %+v, %v", movedPort, err)
	}

	if err := nodes.Delete(ctx, client, created.UUID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = nodes.Get(ctx, client, created.UUID).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get after delete: err = %v, want 404", err)
	}
	if n := countRows(t, s.DB, "ports"); n != 0 {
		t.Errorf("%d ports left after deleting their node", n)
	}
}

// TestGophercloudPortDelete covers the port calls not exercised above.
func TestGophercloudPortDelete(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := s.gopherClient(t, "admin")
	ctx := context.Background()
	node := s.createNode(t, `{"driver": "fake"}`)
	port, err := ports.Create(ctx, client, ports.CreateOpts{NodeUUID: node, Address: "52:54:00:00:00:aa"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ports.Get(ctx, client, port.UUID).Extract(); err != nil || got.Address != port.Address {
		t.Fatalf("get port: %+v, %v", got, err)
	}
	if err := ports.Delete(ctx, client, port.UUID).ExtractErr(); err != nil {
		t.Fatalf("delete port: %v", err)
	}
	if _, err := ports.Get(ctx, client, port.UUID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get deleted port: %v, want 404", err)
	}
}

// TestGophercloudDriversAndConductors reads drivers and conductors as
// exporters do.
func TestGophercloudDriversAndConductors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := s.gopherClient(t, "reader")
	ctx := context.Background()
	_, err := s.DB.Exec(`INSERT INTO conductors (name, drivers, conductor_group, heartbeat_at) VALUES
		('cond-a', '{fake,ipmi}', '', now()),
		('cond-dead', '{fake}', 'rack2', now() - interval '5 minutes')`)
	if err != nil {
		t.Fatal(err)
	}

	pages, err := drivers.ListDrivers(client, drivers.ListDriversOpts{Detail: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := drivers.ExtractDrivers(pages)
	if err != nil || len(all) != 1 || all[0].Name != "fake" {
		t.Fatalf("drivers = %+v, %v; want the one enabled driver", all, err)
	}
	if len(all[0].Hosts) != 1 || all[0].Hosts[0] != "cond-a" {
		t.Errorf("fake driver hosts = %v, want the live conductor only", all[0].Hosts)
	}
	if all[0].DefaultPowerInterface != "fake" || all[0].Type != "dynamic" {
		t.Errorf("driver detail = %+v", all[0])
	}
	d, err := drivers.GetDriverDetails(ctx, client, "fake").Extract()
	if err != nil || d.Name != "fake" {
		t.Errorf("driver details: %+v, %v", d, err)
	}
	props, err := drivers.GetDriverProperties(ctx, client, "fake").Extract()
	if err != nil || (*props)["fake_latency"] == nil {
		t.Errorf("driver properties: %v, %v", props, err)
	}
	if _, err := drivers.GetDriverDetails(ctx, client, "ipmi").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("a driver not enabled here: %v, want 404", err)
	}

	cpages, err := conductors.List(client, conductors.ListOpts{Detail: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := conductors.ExtractConductors(cpages)
	if err != nil || len(cs) != 2 {
		t.Fatalf("conductors = %+v, %v", cs, err)
	}
	alive := map[string]bool{}
	for _, c := range cs {
		alive[c.Hostname] = c.Alive
	}
	if !alive["cond-a"] || alive["cond-dead"] || len(cs[0].Drivers) != 2 {
		t.Errorf("conductors = %+v, want cond-a alive with two drivers and cond-dead not", cs)
	}
	one, err := conductors.Get(ctx, client, "cond-dead").Extract()
	if err != nil || one.ConductorGroup != "rack2" || one.Alive {
		t.Errorf("get conductor: %+v, %v", one, err)
	}
}

// TestGophercloudPagesThroughAllNodes checks that gophercloud's AllPages,
// which follows nodes_links rather than next, sees every one of 2,500
// nodes exactly once, at the server's page size and at a client's.
func TestGophercloudPagesThroughAllNodes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := s.gopherClient(t, "reader")
	const total = 2500
	seedNodes(t, s.DB, total, "n")
	for _, tc := range []struct {
		name  string
		pager pagination.Pager
	}{
		{"server page size", nodes.List(client, nodes.ListOpts{})},
		{"limit 300 by name", nodes.List(client, nodes.ListOpts{Limit: 300, SortKey: "name"})},
		{"detail, newest first", nodes.ListDetail(client, nodes.ListOpts{Limit: 700, SortKey: "created_at", SortDir: "desc"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages, err := tc.pager.AllPages(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			all, err := nodes.ExtractNodes(pages)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, n := range all {
				seen[n.UUID] = true
			}
			if len(all) != total || len(seen) != total {
				t.Fatalf("paged through %d nodes (%d distinct), want %d", len(all), len(seen), total)
			}
			if tc.name == "limit 300 by name" {
				for i := 1; i < len(all); i++ {
					if all[i-1].Name >= all[i].Name {
						t.Fatalf("nodes %d and %d out of order: %q, %q", i-1, i, all[i-1].Name, all[i].Name)
					}
				}
			}
		})
	}
}
