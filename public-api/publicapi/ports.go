package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/jsonbody"
)

var portFields = func() map[string]bool {
	m := map[string]bool{}
	for k := range portDoc(&store.Port{}, "") {
		m[k] = true
	}
	return m
}()

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

// createPort handles POST /v1/ports.
func (a *API) createPort(c *gin.Context) {
	var req createPortRequest
	if err := jsonbody.Decode(c.Request.Body, &req); err != nil {
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
	base := baseURL(c)
	c.Header("Location", base+"/v1/ports/"+p.UUID)
	c.JSON(http.StatusCreated, portDoc(p, base))
}

// showPort handles GET /v1/ports/{port}.
func (a *API) showPort(c *gin.Context) {
	fields, err := parseFields(c, portFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	p, err := a.conductor.GetPort(c.Request.Context(), c.Param("port"))
	if err != nil {
		a.fail(c, err)
		return
	}
	doc := portDoc(p, baseURL(c))
	if fields != nil {
		doc = pick(doc, fields)
	}
	c.JSON(http.StatusOK, doc)
}

// listPorts handles GET /v1/ports.
func (a *API) listPorts(c *gin.Context) {
	detail, err := parseBoolQuery(c, "detail")
	if err != nil {
		a.fail(c, err)
		return
	}
	a.renderPorts(c, detail != nil && *detail)
}

// listPortsDetail handles GET /v1/ports/detail.
func (a *API) listPortsDetail(c *gin.Context) { a.renderPorts(c, true) }

func (a *API) renderPorts(c *gin.Context, detail bool) {
	fields, err := parseFields(c, portFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	if detail && fields != nil {
		a.fail(c, fault.New(fault.Invalid, "Can not specify ?detail=True and fields in the same request."))
		return
	}
	p, err := parsePage(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	if p.sortKey != "" && p.sortKey != "id" {
		a.fail(c, fault.New(fault.Invalid, "The sort_key value %q is invalid.", p.sortKey))
		return
	}
	node := c.Query("node")
	if node == "" {
		node = c.Query("node_uuid")
	}
	ports, err := a.conductor.ListPorts(c.Request.Context(), conductor.PortFilter{
		Limit: p.limit, MarkerUUID: p.marker, NodeIdent: node, Address: c.Query("address"),
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	base := baseURL(c)
	keys := portSummaryFields
	if fields != nil {
		keys = append([]string{"uuid"}, fields...)
	}
	items := make([]gin.H, len(ports))
	for i := range ports {
		doc := portDoc(&ports[i], base)
		if !detail {
			doc = pick(doc, keys)
		}
		items[i] = doc
	}
	last := ""
	if len(ports) > 0 {
		last = ports[len(ports)-1].UUID
	}
	renderList(c, "ports", items, nextURL(c, len(ports), p, last))
}
