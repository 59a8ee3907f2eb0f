package agentapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/fault"
)

// checkinBody is a native checkin.
type checkinBody struct {
	AgentVersion string `json:"agent_version"`
	Status       string `json:"status"`
	LastCommand  *struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"last_command"`
}

// checkin handles POST /v1/checkin: the agent authenticates with its token
// (Authorization: Bearer), reports its version, status and the outcome of
// its last command, and is told what to do next.
func (a *API) checkin(c *gin.Context) {
	id, err := a.agents.AuthenticateAgent(bearer(c.GetHeader("Authorization")))
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="ferric-agent"`)
		a.fail(c, err)
		return
	}
	var body checkinBody
	if err := decodeSmall(c, &body); err != nil {
		a.fail(c, err)
		return
	}
	req := conductor.CheckinRequest{AgentVersion: body.AgentVersion, Status: body.Status, Source: sourceOf(c)}
	if lc := body.LastCommand; lc != nil {
		req.LastCommand = &conductor.CommandResult{Name: lc.Name, Status: lc.Status, Error: lc.Error}
	}
	instr, err := a.agents.Checkin(c.Request.Context(), id, req)
	if err != nil {
		if fault.KindOf(err) == fault.Unauthorized {
			c.Header("WWW-Authenticate", `Bearer realm="ferric-agent"`)
		}
		a.fail(c, err)
		return
	}
	resp := gin.H{"action": instr.Action, "args": instr.Args, "checkin_interval": int(instr.CheckinInterval.Seconds())}
	if instr.Args == nil {
		resp["args"] = gin.H{}
	}
	if instr.Token != "" {
		resp["token"] = instr.Token
	}
	c.JSON(http.StatusOK, resp)
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
	err := a.agents.Heartbeat(c.Request.Context(), conductor.HeartbeatRequest{
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
