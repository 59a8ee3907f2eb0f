package agentapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/shared/fault"
)

// checkin handles POST /v1/checkin: the agent authenticates with its token
// (Authorization: Bearer), reports its version, status and the outcome of
// its last command (agentwire.CheckinRequest; unknown members are 400), and
// is told what to do next (agentwire.CheckinResponse; args always an
// object).
func (a *API) checkin(c *gin.Context) {
	id, err := a.agents.AuthenticateAgent(bearer(c.GetHeader("Authorization")))
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="ferric-agent"`)
		a.fail(c, err)
		return
	}
	var body agentwire.CheckinRequest
	if err := decodeSmall(c, &body); err != nil {
		a.fail(c, err)
		return
	}
	req := agents.CheckinRequest{AgentVersion: body.AgentVersion, Status: body.Status, Source: sourceOf(c)}
	if lc := body.LastCommand; lc != nil {
		req.LastCommand = &agents.CommandResult{Name: lc.Name, Status: lc.Status, Error: lc.Error}
	}
	instr, err := a.agents.Checkin(c.Request.Context(), id, req)
	if err != nil {
		if fault.KindOf(err) == fault.Unauthorized {
			c.Header("WWW-Authenticate", `Bearer realm="ferric-agent"`)
		}
		a.fail(c, err)
		return
	}
	args := json.RawMessage(`{}`)
	if instr.Args != nil {
		if args, err = json.Marshal(instr.Args); err != nil {
			a.fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, agentwire.CheckinResponse{Action: instr.Action, Args: args,
		CheckinInterval: int(instr.CheckinInterval.Seconds()), Token: instr.Token})
}

// bearer extracts the token of an "Authorization: Bearer" header, or "".
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// heartbeatBody is IPA's heartbeat.
type heartbeatBody struct {
	CallbackURL        string `json:"callback_url"`
	AgentToken         string `json:"agent_token"`
	AgentVersion       string `json:"agent_version"`
	AgentVerifyCA      string `json:"agent_verify_ca"`
	AgentStatus        string `json:"agent_status"`
	AgentStatusMessage string `json:"agent_status_message"`
}

// heartbeat handles POST /v1/heartbeat/{node}: IPA's checkin, its token in
// the body. 202 with no body, as Ironic; IPA retries anything else.
func (a *API) heartbeat(c *gin.Context) {
	var body heartbeatBody
	if err := decodeSmall(c, &body); err != nil {
		a.fail(c, err)
		return
	}
	err := a.agents.Heartbeat(c.Request.Context(), agents.HeartbeatRequest{
		NodeIdent: c.Param("node_ident"), Token: body.AgentToken, CallbackURL: body.CallbackURL,
		AgentVersion: body.AgentVersion, AgentStatus: body.AgentStatus,
		AgentStatusMessage: body.AgentStatusMessage, AgentVerifyCA: body.AgentVerifyCA, Source: sourceOf(c),
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusAccepted)
}
