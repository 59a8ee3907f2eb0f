package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
)

// getConsole handles GET /v1/nodes/{node}/states/console, and the path the
// tempest plugin's client asks for, /v1/nodes/states/console/{node}, which
// Ironic's routing answers the same way.
func (a *API) getConsole(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	st, err := a.conductor.NodeConsole(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	var info any
	if st.Info != nil {
		info = st.Info
	}
	writeJSON(c, http.StatusOK, doc{{"console_enabled", st.Enabled}, {"console_info", info}})
}

// consoleRequest is the body of PUT .../states/console.
type consoleRequest struct {
	Enabled *looseBool `json:"enabled"`
}

// setConsole handles PUT /v1/nodes/{node}/states/console: 202, no body.
func (a *API) setConsole(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var req consoleRequest
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if req.Enabled == nil {
		a.fail(c, fault.New(fault.Invalid, "Mandatory field missing: enabled."))
		return
	}
	node := c.Param("node")
	if err := a.conductor.SetConsoleMode(c.Request.Context(), node, bool(*req.Enabled), c.GetString(subjectKey)); err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", baseURL(c)+"/v1/nodes/"+node+"/states/console")
	c.Status(http.StatusAccepted)
}

// setRAID handles PUT /v1/nodes/{node}/states/raid (API 1.12): the body is
// the target RAID configuration, stored for the node; 204.
func (a *API) setRAID(c *gin.Context) {
	if v := versionOf(c); !v.AtLeast(vRAIDConfig) {
		a.fail(c, notAcceptable("Setting a target RAID configuration", vRAIDConfig, v))
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var config map[string]any
	if err := decodeBody(c, &config); err != nil {
		a.fail(c, err)
		return
	}
	if err := a.conductor.SetTargetRAIDConfig(c.Request.Context(), c.Param("node"), config); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
