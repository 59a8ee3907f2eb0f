package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/jsonbody"
)

// nodeFields are the names accepted by fields=.
var nodeFields = func() map[string]bool {
	m := map[string]bool{}
	for k := range nodeDoc(&store.Node{}, "", MaxVersion) {
		m[k] = true
	}
	return m
}()

// createNodeRequest is the body of POST /v1/nodes. Unknown fields are refused.
type createNodeRequest struct {
	UUID           string         `json:"uuid"`
	Name           *string        `json:"name"`
	Driver         string         `json:"driver"`
	DriverInfo     map[string]any `json:"driver_info"`
	Properties     map[string]any `json:"properties"`
	InstanceInfo   map[string]any `json:"instance_info"`
	Extra          map[string]any `json:"extra"`
	ResourceClass  *string        `json:"resource_class"`
	ConductorGroup string         `json:"conductor_group"`
	Owner          *string        `json:"owner"`
	Lessee         *string        `json:"lessee"`
	Description    *string        `json:"description"`
}

// createNode handles POST /v1/nodes.
func (a *API) createNode(c *gin.Context) {
	var req createNodeRequest
	if err := jsonbody.Decode(c.Request.Body, &req); err != nil {
		a.fail(c, err)
		return
	}
	v := versionOf(c)
	initial := conductor.StateEnroll
	if !v.AtLeast(11) {
		initial = conductor.StateAvailable // before 1.11 nodes started available
	}
	n, err := a.conductor.CreateNode(c.Request.Context(), conductor.NodeSpec{
		UUID: req.UUID, Name: req.Name, Driver: req.Driver, DriverInfo: req.DriverInfo,
		Properties: req.Properties, InstanceInfo: req.InstanceInfo, Extra: req.Extra,
		ResourceClass: req.ResourceClass, ConductorGroup: req.ConductorGroup,
		Owner: req.Owner, Lessee: req.Lessee, Description: req.Description,
		InitialState: initial,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	base := baseURL(c)
	c.Header("Location", base+"/v1/nodes/"+n.UUID)
	c.JSON(http.StatusCreated, nodeDoc(n, base, v))
}

// showNode handles GET /v1/nodes/{node}.
func (a *API) showNode(c *gin.Context) {
	fields, err := parseFields(c, nodeFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	n, err := a.conductor.GetNode(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	doc := nodeDoc(n, baseURL(c), versionOf(c))
	if fields != nil {
		doc = pick(doc, fields)
	}
	c.JSON(http.StatusOK, doc)
}

// listNodes handles GET /v1/nodes.
func (a *API) listNodes(c *gin.Context) {
	detail, err := parseBoolQuery(c, "detail")
	if err != nil {
		a.fail(c, err)
		return
	}
	a.renderNodes(c, detail != nil && *detail)
}

// listNodesDetail handles GET /v1/nodes/detail.
func (a *API) listNodesDetail(c *gin.Context) {
	if _, ok := c.GetQuery("detail"); ok {
		a.fail(c, fault.New(fault.Invalid, "The detail parameter is not allowed on /v1/nodes/detail."))
		return
	}
	a.renderNodes(c, true)
}

func (a *API) renderNodes(c *gin.Context, detail bool) {
	fields, err := parseFields(c, nodeFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	if detail && fields != nil {
		a.fail(c, fault.New(fault.Invalid, "Can not specify ?detail=True and fields in the same request."))
		return
	}
	q, p, err := nodeQuery(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	nodes, err := a.conductor.ListNodes(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	base, v := baseURL(c), versionOf(c)
	keys := nodeSummaryFields
	if fields != nil {
		keys = append([]string{"uuid"}, fields...)
	}
	items := make([]gin.H, len(nodes))
	for i := range nodes {
		doc := nodeDoc(&nodes[i], base, v)
		if !detail {
			doc = pick(doc, keys)
		}
		items[i] = doc
	}
	last := ""
	if len(nodes) > 0 {
		last = nodes[len(nodes)-1].UUID
	}
	renderList(c, "nodes", items, nextURL(c, len(nodes), p, last))
}

func nodeQuery(c *gin.Context) (store.NodeQuery, page, error) {
	p, err := parsePage(c)
	if err != nil {
		return store.NodeQuery{}, p, err
	}
	q := store.NodeQuery{
		Limit: p.limit, MarkerUUID: p.marker, SortKey: p.sortKey, SortDesc: p.desc,
		ProvisionState: c.Query("provision_state"),
		Driver:         c.Query("driver"),
		ResourceClass:  c.Query("resource_class"),
		ConductorGroup: c.Query("conductor_group"),
		Fault:          c.Query("fault"),
		Owner:          c.Query("owner"),
	}
	if q.Maintenance, err = parseBoolQuery(c, "maintenance"); err != nil {
		return q, p, err
	}
	if q.Associated, err = parseBoolQuery(c, "associated"); err != nil {
		return q, p, err
	}
	return q, p, nil
}

// deleteNode handles DELETE /v1/nodes/{node}.
func (a *API) deleteNode(c *gin.Context) {
	if err := a.conductor.DeleteNode(c.Request.Context(), c.Param("node")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
