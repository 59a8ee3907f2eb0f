package agents

import (
	"context"
	"errors"
	"fmt"
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
// callback URL. Ferric does not drive IPA (it never calls the agent's API,
// so IPA is never told to write an image or clean a disk): in wait
// call-back and clean wait a heartbeat is recorded and the node keeps
// waiting, noted once in its history; the callback timeout then fails it,
// saying why (a heartbeat does not count as the agent calling back). In
// inspect wait it resumes the node once the inventory of this boot has
// arrived (POST /v1/continue_inspection): that work really was done. A
// ramdisk that reports its own progress (agent_status, Ironic API 1.72:
// it does the work itself) resumes the node at "end" and fails it at
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
	case "":
		if out.ProvisionState == conductor.StateInspectWait {
			break // its inventory arrived: the inspection is done
		}
		a.noteIPANotDriven(ctx, out, claims.Generation)
		return nil
	case "start":
		return nil // still at work
	case "error":
		cmd.Status, cmd.Error = CommandFailed, req.AgentStatusMessage
	}
	return a.settle(ctx, out.ID, claims.Generation, out.ProvisionState, cmd, "")
}

// ipaNotDriven is what Ferric hands an IPA agent in a deploy or clean wait:
// nothing, since it does not drive IPA (docs/agent-protocol.md).
const ipaNotDriven = "nothing (ironic-python-agent is not driven)"

// noteIPANotDriven writes into the node's history, once per wait, that the
// IPA agent heartbeating there will not be given the work.
func (a *Agents) noteIPANotDriven(ctx context.Context, out *store.CheckinOutcome, generation int64) {
	e := a.history(out.ID, "WARNING", fmt.Sprintf("ironic-python-agent heartbeats from the node, but Ferric does not drive IPA: "+
		"nothing will %s, and the node stays in %s until the callback timeout fails it. Boot ferric-agent for this work (docs/agent-protocol.md).",
		ipaWork[out.ProvisionState], out.ProvisionState))
	if _, err := store.MarkCommandGiven(ctx, a.q, out.ID, generation, out.ProvisionState, ipaNotDriven, e); err != nil {
		a.log.Warn("writing node history failed", "node_id", out.ID, "error", err)
	}
}

// ipaWork is the work of each wait that IPA is not asked to do.
var ipaWork = map[string]string{
	conductor.StateWaitCallback: "write the image",
	conductor.StateCleanWait:    "clean the disks",
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
