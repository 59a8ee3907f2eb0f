package agentapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/conductor/inventory"
	"github.com/ferric-metal/ferric/shared/redact"
)

// heartbeatTimeout is IPA's config.heartbeat_timeout: IPA heartbeats every
// 30-60% of it.
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

// lookupNative handles POST /v1/lookup: the body is the machine's inventory;
// the answer is its node, the agent token (or "******" after the first
// lookup of a boot) and the checkin interval.
func (a *API) lookupNative(c *gin.Context) {
	data, err := inventory.Parse(readBody(c), inventory.FormatNative)
	if err != nil {
		a.fail(c, err)
		return
	}
	res, err := a.agents.Lookup(c.Request.Context(), agents.LookupRequest{Data: data, Source: sourceOf(c)})
	if err != nil {
		a.fail(c, err)
		return
	}
	n := res.Node
	c.JSON(http.StatusOK, agentwire.LookupResponse{
		NodeUUID:        n.UUID,
		Token:           tokenOrMask(res.Token),
		CheckinInterval: int(a.agents.CheckinInterval().Seconds()),
		Node: agentwire.LookupNode{
			UUID:           n.UUID,
			Name:           n.Name,
			ProvisionState: n.ProvisionState,
			Properties:     redact.Secrets(n.Properties),
			InstanceInfo:   redact.Secrets(n.InstanceInfo, "image_url"),
		},
	})
}

// lookupIPA handles GET /v1/lookup?addresses=MAC,...&node_uuid=: the node
// the agent runs on, in the shape IPA expects (it needs node.uuid and
// config.heartbeat_timeout; config.agent_token is revealed once per boot).
func (a *API) lookupIPA(c *gin.Context) {
	var macs []string
	if q := c.Query("addresses"); q != "" {
		macs = strings.Split(q, ",")
	}
	res, err := a.agents.Lookup(c.Request.Context(), agents.LookupRequest{
		MACs: macs, NodeUUID: c.Query("node_uuid"), Source: sourceOf(c), IPA: true})
	if err != nil {
		a.fail(c, err)
		return
	}
	n := res.Node
	c.JSON(http.StatusOK, gin.H{
		"node": gin.H{
			"uuid":                 n.UUID,
			"properties":           redact.Secrets(n.Properties),
			"instance_info":        redact.Secrets(n.InstanceInfo, "image_url"),
			"driver_internal_info": gin.H{},
		},
		"config": gin.H{
			"heartbeat_timeout":    heartbeatTimeout,
			"agent_token":          tokenOrMask(res.Token),
			"agent_token_required": true,
		},
	})
}

// continueInspection handles POST /v1/continue_inspection: IPA's inspection
// data, sent before its lookup (without a Content-Type, by some versions).
// The answer is Ironic's at API 1.1: 202 with the node's UUID.
func (a *API) continueInspection(c *gin.Context) {
	data, err := inventory.Parse(readBody(c), inventory.FormatIPA)
	if err != nil {
		a.fail(c, err)
		return
	}
	id, err := a.agents.ContinueInspection(c.Request.Context(), agents.LookupRequest{
		Data: data, NodeUUID: c.Query("node_uuid"), Source: sourceOf(c)})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"uuid": id})
}

// tokenOrMask is the token to show: agents (IPA's and ours) treat "******"
// as "already handed out".
func tokenOrMask(tok string) string {
	if tok == "" {
		return agentwire.MaskedToken
	}
	return tok
}
