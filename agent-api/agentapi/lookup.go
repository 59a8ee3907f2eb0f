package agentapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/redact"
)

// advertisedVersion is what IPA reads from GET /: it must be at least 1.68
// for IPA to send agent tokens and versions.
const advertisedVersion = "1.81"

// heartbeatTimeout is config.heartbeat_timeout: IPA checks in every 30-60%
// of it.
const heartbeatTimeout = 300

// root handles GET /, the version document IPA reads before lookup.
func (a *API) root(c *gin.Context) {
	v := gin.H{"id": "v1", "status": "CURRENT", "min_version": "1.1", "version": advertisedVersion, "links": []gin.H{}}
	c.JSON(http.StatusOK, gin.H{
		"name":            "Ferric agent API",
		"description":     "Lookup and checkin for deploy agents.",
		"default_version": v,
		"versions":        []gin.H{v},
	})
}

// lookupIPA handles GET /v1/lookup?addresses=MAC,...: the node the agent
// runs on, in the shape IPA expects (it needs node.uuid and
// config.heartbeat_timeout).
func (a *API) lookupIPA(c *gin.Context) {
	addresses := strings.Split(c.Query("addresses"), ",")
	n, err := a.conductor.LookupByMACs(c.Request.Context(), addresses)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"node": gin.H{
			"uuid":                 n.UUID,
			"properties":           n.Properties,
			"instance_info":        redact.Secrets(n.InstanceInfo, "image_url"),
			"driver_internal_info": redact.Secrets(n.DriverInternalInfo),
		},
		"config": gin.H{"heartbeat_timeout": heartbeatTimeout},
	})
}
