package agents

import (
	"context"
	"errors"
	"net/netip"
	"net/url"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// HeartbeatRequest is IPA's heartbeat (POST /v1/heartbeat/{node}).
type HeartbeatRequest struct {
	NodeIdent          string
	Token              string
	CallbackURL        string
	AgentVersion       string
	AgentStatus        string // start, end or error (Ironic API >= 1.72)
	AgentStatusMessage string
	AgentVerifyCA      string
	Source             netip.Addr
}

var ipaAgentStatuses = map[string]bool{"start": true, "end": true, "error": true}

// errIPATokenRejected is Ironic's answer to a bad heartbeat token: 400.
var errIPATokenRejected = fault.New(fault.Invalid, "Invalid or missing agent token received.")

// Heartbeat records an IPA agent's heartbeat: liveness, version and
// callback URL. Ferric cannot send IPA commands (there is no conductor to
// agent channel), so a heartbeat stands for "the agent is up": in wait
// call-back and clean wait it resumes the node, as Ironic's first heartbeat
// does; in inspect wait it resumes the node once the inventory of this boot
// has arrived (POST /v1/continue_inspection). A ramdisk that reports its
// own progress (agent_status) resumes the node at "end" and fails it at
// "error". Token faults are 400, as in Ironic; nothing is recorded then.
func (a *Agents) Heartbeat(ctx context.Context, req HeartbeatRequest) error {
	if req.Token == "" {
		return fault.New(fault.Invalid, "Agent token is required for heartbeat processing.")
	}
	if req.AgentVersion == "" && req.AgentStatus == "" {
		return fault.New(fault.Invalid, "Agent did not transmit a version.")
	}
	if len(req.AgentVerifyCA) > maxVerifyCA {
		return fault.New(fault.Invalid, "agent_verify_ca is longer than %d bytes.", maxVerifyCA)
	}
	if len(req.AgentVersion) > maxAgentVersion {
		return fault.New(fault.Invalid, "agent_version is longer than %d bytes.", maxAgentVersion)
	}
	if req.AgentStatus != "" && !ipaAgentStatuses[req.AgentStatus] {
		return fault.New(fault.Invalid, "Invalid agent_status %q: use start, end or error.", req.AgentStatus)
	}
	if len(req.AgentStatusMessage) > maxStatusMessage {
		return fault.New(fault.Invalid, "agent_status_message is longer than %d bytes.", maxStatusMessage)
	}
	if req.CallbackURL != "" {
		u, err := url.Parse(req.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.CallbackURL) > maxAgentURL {
			return fault.New(fault.Invalid, "Invalid callback_url %q: an http or https URL is required.", truncateText(req.CallbackURL, 100))
		}
	} else if req.AgentStatus == "" {
		return fault.New(fault.Invalid, "callback_url is required.")
	}
	claims, err := a.verifyToken(req.Token)
	if err != nil {
		return errIPATokenRejected
	}
	if claims.Subject != req.NodeIdent {
		a.log.Warn("agent token rejected: it is for another node", "token_node", claims.Subject, "path_node", truncateText(req.NodeIdent, 64))
		return errIPATokenRejected
	}
	rec := store.Checkin{NodeUUID: claims.Subject, TokenGeneration: claims.Generation,
		SourceAddress: sourceText(req.Source), Protocol: "ipa", AgentVersion: optionalText(req.AgentVersion),
		AgentStatus: optionalText(req.AgentStatus), AgentURL: optionalText(req.CallbackURL),
		AgentVerifyCA: optionalText(req.AgentVerifyCA)}
	out, err := store.RecordCheckin(ctx, a.q, rec)
	if errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "Node %s could not be found.", claims.Subject)
	}
	if err != nil {
		return err
	}
	if !out.Recorded {
		if out.TokenGeneration != claims.Generation {
			a.log.Info("agent token rejected: revoked", "node", out.UUID, "token_generation", claims.Generation, "node_generation", out.TokenGeneration)
			return errIPATokenRejected
		}
		if out.PreviousVerifyCA != nil && req.AgentVerifyCA != "" && *out.PreviousVerifyCA != req.AgentVerifyCA {
			return fault.New(fault.Invalid, "Detected change in ramdisk provided agent_verify_ca.")
		}
		return fault.New(fault.Invalid, "Detected change in ramdisk provided callback_url.")
	}
	if _, waiting := waitActions[out.ProvisionState]; !waiting || out.Maintenance {
		return nil
	}
	if out.ProvisionState == conductor.StateInspectWait {
		gen, err := store.InventoryGeneration(ctx, a.q, out.ID)
		if err != nil || gen != claims.Generation {
			return nil // no inventory from this boot yet: keep waiting for it
		}
	}
	cmd := &CommandResult{Name: waitActions[out.ProvisionState], Status: CommandSuccess}
	switch req.AgentStatus { // ramdisks that report their own progress (Ironic API 1.72)
	case "start":
		return nil // still at work
	case "error":
		cmd.Status, cmd.Error = CommandFailed, req.AgentStatusMessage
	}
	return a.settle(ctx, out.ID, claims.Generation, out.ProvisionState, cmd, "")
}

func optionalText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
