package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
)

// Node traits (API 1.37). Before it, Ironic answers a node's traits as it
// answered any unknown member of a node: reading is 406, setting 405,
// removing 404; so does Ferric.

// oldTraits answers a traits request made below 1.37 with what Ironic
// answers; it reports whether it did.
func (a *API) oldTraits(c *gin.Context) bool {
	if versionOf(c).AtLeast(vTraits) {
		return false
	}
	switch c.Request.Method {
	case http.MethodGet:
		a.fail(c, notAcceptable("Node traits", vTraits, versionOf(c)))
	case http.MethodPut:
		a.fail(c, fault.New(fault.MethodNotAllowed, "The method is not allowed for this resource."))
	default:
		a.fail(c, fault.New(fault.NotFound, "The resource could not be found."))
	}
	return true
}

// listTraits handles GET /v1/nodes/{node}/traits.
func (a *API) listTraits(c *gin.Context) {
	if a.oldTraits(c) {
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	traits, err := a.conductor.NodeTraits(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, doc{{"traits", traits}})
}

// traitsRequest is the body of PUT /v1/nodes/{node}/traits.
type traitsRequest struct {
	Traits *[]string `json:"traits"`
}

// setTraits handles PUT /v1/nodes/{node}/traits: the node's traits become
// the body's; 204.
func (a *API) setTraits(c *gin.Context) {
	if a.oldTraits(c) {
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var req traitsRequest
	if err := decodeOptionalBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if req.Traits == nil {
		a.fail(c, fault.New(fault.Invalid, "A single node trait may be added via PUT /v1/nodes/<node identifier>/traits/<trait> with no body, or all node traits may be replaced via PUT /v1/nodes/<node identifier>/traits with the list of traits specified in the request body."))
		return
	}
	if err := a.conductor.SetNodeTraits(c.Request.Context(), c.Param("node"), *req.Traits, c.GetString(subjectKey)); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// addTrait handles PUT /v1/nodes/{node}/traits/{trait}, with no body: 204
// and the trait's Location.
func (a *API) addTrait(c *gin.Context) {
	if a.oldTraits(c) {
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var body map[string]any // none, or an empty object, as Ironic takes
	if err := decodeOptionalBody(c, &body); err != nil || len(body) > 0 {
		a.fail(c, fault.New(fault.Invalid, "No body should be provided when adding a trait"))
		return
	}
	node, trait := c.Param("node"), c.Param("trait")
	if err := a.conductor.AddNodeTrait(c.Request.Context(), node, trait, c.GetString(subjectKey)); err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", baseURL(c)+"/v1/nodes/"+node+"/traits/"+trait)
	c.Status(http.StatusNoContent)
}

// removeTraits handles DELETE /v1/nodes/{node}/traits (every trait) and
// DELETE /v1/nodes/{node}/traits/{trait}: 204.
func (a *API) removeTraits(c *gin.Context) {
	if a.oldTraits(c) {
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	if err := a.conductor.RemoveNodeTrait(c.Request.Context(), c.Param("node"), c.Param("trait"), c.GetString(subjectKey)); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
