package publicapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
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

// TestGophercloudPagesThroughAllNodes checks that gophercloud's AllPages,
// which follows nodes_links rather than next, sees every node once.
func TestGophercloudPagesThroughAllNodes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	client := s.gopherClient(t, "reader")
	const total = 250
	for i := range total {
		_, err := s.DB.Exec(`INSERT INTO nodes (uuid, name, driver, provision_state)
			VALUES (gen_random_uuid(), $1, 'fake', 'enroll')`, fmt.Sprintf("n%03d", i))
		if err != nil {
			t.Fatal(err)
		}
	}
	pages, err := nodes.List(client, nodes.ListOpts{Limit: 40, SortKey: "name"}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, err := nodes.ExtractNodes(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total {
		t.Fatalf("paged through %d nodes, want %d", len(all), total)
	}
	for i, n := range all {
		if want := fmt.Sprintf("n%03d", i); n.Name != want {
			t.Fatalf("node %d is %q, want %q (order or duplicates wrong)", i, n.Name, want)
		}
	}
}
