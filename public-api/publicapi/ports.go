package publicapi

import (
	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/fault"
)

// createPortRequest is the body of POST /v1/ports.
type createPortRequest struct {
	UUID                string         `json:"uuid"`
	NodeUUID            string         `json:"node_uuid"`
	Address             string         `json:"address"`
	PXEEnabled          *bool          `json:"pxe_enabled"`
	LocalLinkConnection map[string]any `json:"local_link_connection"`
	PhysicalNetwork     *string        `json:"physical_network"`
	Extra               map[string]any `json:"extra"`
	// Accepted for client compatibility; only their defaults are supported.
	PortgroupUUID *string `json:"portgroup_uuid"`
	IsSmartNIC    *bool   `json:"is_smartnic"`
}

func (r *createPortRequest) checkVersion(v Version) error {
	for _, f := range []struct {
		set  bool
		name string
	}{
		{r.PXEEnabled != nil, "pxe_enabled"}, {r.LocalLinkConnection != nil, "local_link_connection"},
		{r.PhysicalNetwork != nil, "physical_network"}, {r.PortgroupUUID != nil, "portgroup_uuid"},
		{r.IsSmartNIC != nil, "is_smartnic"},
	} {
		if m, _ := portFields.minor(f.name); f.set && !v.AtLeast(m) {
			return notAcceptable("Field "+f.name, m, v)
		}
	}
	return nil
}

// createPort handles POST /v1/ports.
func (a *API) createPort(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var req createPortRequest
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if err := req.checkVersion(versionOf(c)); err != nil {
		a.fail(c, err)
		return
	}
	if req.PortgroupUUID != nil && *req.PortgroupUUID != "" {
		a.fail(c, fault.New(fault.Invalid, "Port groups are not supported by this service."))
		return
	}
	if req.IsSmartNIC != nil && *req.IsSmartNIC {
		a.fail(c, fault.New(fault.Invalid, "Smart NIC ports are not supported by this service."))
		return
	}
	p, err := a.conductor.CreatePort(c.Request.Context(), conductor.PortSpec{
		UUID: req.UUID, NodeIdent: req.NodeUUID, Address: req.Address, PXEEnabled: req.PXEEnabled,
		LocalLinkConnection: req.LocalLinkConnection, PhysicalNetwork: req.PhysicalNetwork, Extra: req.Extra,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	created(c, portFields, "ports", p.UUID, p)
}

// showPort handles GET /v1/ports/{port}.
func (a *API) showPort(c *gin.Context) {
	showOne(a, c, portFields, "port", a.conductor.GetPort)
}

var portFilterNames = []string{"node", "node_uuid", "address"}

// listPorts handles GET /v1/ports.
func (a *API) listPorts(c *gin.Context) { a.renderPorts(c, false, "") }

// listPortsDetail handles GET /v1/ports/detail.
func (a *API) listPortsDetail(c *gin.Context) { a.renderPorts(c, true, "") }

// listNodePorts handles GET /v1/nodes/{node}/ports.
func (a *API) listNodePorts(c *gin.Context) { a.renderPorts(c, false, c.Param("node")) }

// listNodePortsDetail handles GET /v1/nodes/{node}/ports/detail.
func (a *API) listNodePortsDetail(c *gin.Context) { a.renderPorts(c, true, c.Param("node")) }

// renderPorts lists ports, of one node when nodeIdent is set.
func (a *API) renderPorts(c *gin.Context, detailPath bool, nodeIdent string) {
	filters := portFilterNames
	if nodeIdent != "" {
		filters = []string{"address"}
	}
	detail, fields, p, err := listRequest(c, portFields, detailPath, filters)
	if err != nil {
		a.fail(c, err)
		return
	}
	v := versionOf(c)
	if err := checkSortKey(portFields, p.sortKey, v); err != nil {
		a.fail(c, err)
		return
	}
	if nodeIdent == "" {
		nodeIdent = c.Query("node")
		if nodeIdent == "" {
			nodeIdent = c.Query("node_uuid")
		}
	}
	ports, err := a.conductor.ListPorts(c.Request.Context(), conductor.PortFilter{
		Limit: p.limit, MarkerUUID: p.marker, SortKey: p.sortKey, SortDesc: p.desc,
		NodeIdent: nodeIdent, Address: c.Query("address"),
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	renderPage(c, portFields, "ports", ports, listKeys(detail, fields, portSummaryFields, "uuid"), p, func(x *portRow) string { return x.UUID })
}

// updatePort handles PATCH /v1/ports/{port}.
func (a *API) updatePort(c *gin.Context) {
	patchOne(a, c, portFields, "port", nil, nil, a.conductor.UpdatePort)
}

// deletePort handles DELETE /v1/ports/{port}.
func (a *API) deletePort(c *gin.Context) {
	deleteOne(a, c, "port", a.conductor.DeletePort)
}
