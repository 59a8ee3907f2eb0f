package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/token"
)

// Actions a checkin tells an agent to take next.
const (
	ActionWait     = "wait"      // nothing to do: check in again later
	ActionDeploy   = "deploy"    // write the image in args to disk
	ActionClean    = "clean"     // clean the disks
	ActionInspect  = "inspect"   // send the inventory (POST /v1/lookup), then report success
	ActionPowerOff = "power_off" // nothing will need this agent: shut the machine down
)

// Command outcomes an agent reports at checkin.
const (
	CommandRunning = "running"
	CommandSuccess = "success"
	CommandFailed  = "failed"
)

// Agent states an agent reports at checkin.
var agentStatuses = map[string]bool{"idle": true, "busy": true, "error": true}

// waitActions maps each state that waits for an agent to what the agent
// must do; the agent's report of success resumes the node.
var waitActions = map[string]string{
	StateWaitCallback: ActionDeploy,
	StateCleanWait:    ActionClean,
	StateInspectWait:  ActionInspect,
}

// deployInstanceKeys are the instance_info members an agent needs to
// deploy: the image and the disk layout. Nothing else of instance_info is
// sent; these go only to the node's own agent, authenticated by its token.
var deployInstanceKeys = []string{
	"image_source", "image_url", "image_checksum", "image_os_hash_algo", "image_os_hash_value",
	"image_disk_format", "image_type", "kernel", "ramdisk", "root_gb", "swap_mb", "ephemeral_gb",
	"ephemeral_format", "configdrive",
}

const (
	maxAgentVersion  = 64
	maxCommandError  = 4096
	maxAgentURL      = 1024
	maxVerifyCA      = 16 << 10 // a PEM certificate chain
	maxStatusMessage = 4096
)

// AgentIdentity is an authenticated agent: the node and boot its token is
// for.
type AgentIdentity struct {
	claims *token.Claims
}

// NodeUUID is the node the agent runs on.
func (id *AgentIdentity) NodeUUID() string { return id.claims.Subject }

// AuthenticateAgent checks a native agent's bearer token. Any fault is
// fault.Unauthorized with one message; the log says what was wrong. Whether
// the token was revoked is checked by Checkin, with the node.
func (a *Agents) AuthenticateAgent(raw string) (*AgentIdentity, error) {
	claims, err := a.verifyToken(raw)
	if err != nil {
		return nil, err
	}
	return &AgentIdentity{claims: claims}, nil
}

// CheckinRequest is a native agent's checkin.
type CheckinRequest struct {
	AgentVersion string
	Status       string         // idle, busy or error
	LastCommand  *CommandResult // nil before the first command
	Source       netip.Addr
}

// CommandResult is the outcome of the last command an agent was given.
type CommandResult struct {
	Name   string // an action: deploy, clean, inspect, power_off
	Status string // running, success or failed
	Error  string // when failed: why, for the node's last_error
}

// Instruction is what a checkin tells the agent.
type Instruction struct {
	Action          string
	Args            map[string]any
	CheckinInterval time.Duration
	// Token is a renewed agent token to use from now on, or "".
	Token string
}

func (r *CheckinRequest) check() error {
	if r.AgentVersion == "" || len(r.AgentVersion) > maxAgentVersion || !utf8.ValidString(r.AgentVersion) {
		return fault.New(fault.Invalid, "agent_version is required: a string of at most %d bytes.", maxAgentVersion)
	}
	if !agentStatuses[r.Status] {
		return fault.New(fault.Invalid, "Invalid status %q: use idle, busy or error.", r.Status)
	}
	if c := r.LastCommand; c != nil {
		switch c.Name {
		case ActionDeploy, ActionClean, ActionInspect, ActionPowerOff:
		default:
			return fault.New(fault.Invalid, "Invalid last_command.name %q: use deploy, clean, inspect or power_off.", c.Name)
		}
		switch c.Status {
		case CommandRunning, CommandSuccess, CommandFailed:
		default:
			return fault.New(fault.Invalid, "Invalid last_command.status %q: use running, success or failed.", c.Status)
		}
		if len(c.Error) > maxCommandError || !utf8.ValidString(c.Error) {
			return fault.New(fault.Invalid, "last_command.error must be valid UTF-8 of at most %d bytes.", maxCommandError)
		}
	}
	return nil
}

// Checkin records that the agent is alive and tells it what to do next. It
// is one indexed read and one write; when the agent reports that the
// command its node waits for is done, the node resumes (a conductor task
// does the rest) or, if the command failed, fails.
func (a *Agents) Checkin(ctx context.Context, id *AgentIdentity, req CheckinRequest) (*Instruction, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	rec := store.Checkin{
		NodeUUID: id.claims.Subject, TokenGeneration: id.claims.Generation, SourceAddress: sourceText(req.Source),
		Protocol: "native", AgentVersion: &req.AgentVersion, AgentStatus: &req.Status,
	}
	if c := req.LastCommand; c != nil {
		rec.CommandName, rec.CommandStatus = &c.Name, &c.Status
		if c.Error != "" {
			rec.CommandError = &c.Error
		}
	}
	out, err := a.record(ctx, rec)
	if err != nil {
		return nil, err
	}
	if !out.Recorded {
		a.c.log.Info("agent token rejected: revoked", "node", out.UUID,
			"token_generation", id.claims.Generation, "node_generation", out.TokenGeneration)
		return nil, errTokenRejected
	}
	n := &out.AgentNode
	instr := &Instruction{Action: ActionWait, CheckinInterval: a.opts.CheckinInterval}
	if cmd := req.LastCommand; cmd != nil && cmd.Name == waitActions[n.ProvisionState] && !n.Maintenance &&
		(cmd.Status == CommandSuccess || cmd.Status == CommandFailed) {
		if err := a.settle(ctx, n.ID, id.claims.Generation, n.ProvisionState, cmd); err != nil {
			return nil, err
		}
	} else {
		instr.Action, instr.Args = a.nextAction(n, req.LastCommand)
	}
	if instr.Token, err = a.renewedToken(id.claims); err != nil {
		return nil, err
	}
	return instr, nil
}

// record writes a checkin, turning a missing node into a rejected token:
// tokens of deleted nodes are worthless.
func (a *Agents) record(ctx context.Context, rec store.Checkin) (*store.CheckinOutcome, error) {
	out, err := store.RecordCheckin(ctx, a.q, rec)
	if errors.Is(err, store.ErrNotFound) {
		a.c.log.Info("agent token rejected: its node does not exist", "node", rec.NodeUUID)
		return nil, errTokenRejected
	}
	return out, err
}

// nextAction decides what the agent does next, given its node.
func (a *Agents) nextAction(n *store.AgentNode, last *CommandResult) (string, map[string]any) {
	if n.Maintenance {
		return ActionWait, nil
	}
	if action, waiting := waitActions[n.ProvisionState]; waiting {
		if last != nil && last.Name == action && last.Status == CommandRunning {
			return ActionWait, nil
		}
		args := map[string]any{}
		if action == ActionDeploy {
			for _, k := range deployInstanceKeys {
				if v, ok := n.InstanceInfo[k]; ok {
					args[k] = v
				}
			}
			if hints, ok := n.Properties["root_device"]; ok {
				args["root_device"] = hints
			}
		}
		if action == ActionClean && len(n.CleanSteps) > 0 {
			var steps []any
			if err := json.Unmarshal(n.CleanSteps, &steps); err == nil {
				args["clean_steps"] = steps
			}
		}
		return action, args
	}
	if fastTrackLookupStates[n.ProvisionState] && !a.c.opts.FastTrack {
		// At rest, without fast track to reuse a running agent: the machine
		// has no reason to stay up (a discovered node waits for its operator).
		return ActionPowerOff, nil
	}
	return ActionWait, nil // the conductor works on the node, or an operator must act
}

// settle acts on the agent's report that the command its node waits for
// finished: success resumes the node, failure fails it. Both happen under
// the node's row lock, after checking that the token is still current and
// the node still waits in state.
func (a *Agents) settle(ctx context.Context, nodeID, generation int64, state string, cmd *CommandResult) error {
	return store.Transact(ctx, a.c.db, func(tx *sqlx.Tx) error {
		n, err := store.GetAgentNodeForUpdate(ctx, tx, nodeID)
		if err != nil {
			return err
		}
		if n.TokenGeneration != generation {
			return errTokenRejected // revoked since the checkin was recorded
		}
		if n.ProvisionState != state || n.Maintenance {
			return nil // moved on meanwhile; nothing to settle
		}
		if cmd.Status == CommandFailed {
			msg := cmd.Error
			if msg == "" {
				msg = "no reason given"
			}
			return a.c.failAgentWait(ctx, tx, &n.Node, fmt.Sprintf("Agent reported that %s failed: %s", cmd.Name, msg))
		}
		if state == StateInspectWait {
			gen, err := store.InventoryGeneration(ctx, tx, n.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err != nil || gen != generation {
				return a.c.failAgentWait(ctx, tx, &n.Node,
					"Agent reported inspection done, but sent no inventory during this boot (POST /v1/lookup with its inventory).")
			}
		}
		_, err = a.c.AgentCallback(ctx, tx, &n.Node)
		return err
	})
}

// failAgentWait moves a node waiting for its agent to the failed state of
// its wait (deploy failed, clean failed, inspect failed), recording why.
func (c *Conductor) failAgentWait(ctx context.Context, q store.Querier, node *store.Node, reason string) error {
	if holder := node.LockHolder(c.now()); holder != "" {
		return nodeLocked(node.UUID, holder)
	}
	target := ""
	if node.TargetProvisionState != nil {
		target = *node.TargetProvisionState
	}
	to, newTarget, ok := nextState(node.ProvisionState, target, EventFail)
	if !ok {
		return fmt.Errorf("internal: no failure transition from %s", node.ProvisionState)
	}
	if err := store.Transition(ctx, q, node.ID, nil, node.ProvisionState, to, nullable(newTarget), &reason); err != nil {
		return err
	}
	c.addHistory(ctx, q, node.ID, "ERROR", "provision", reason, "")
	return nil
}

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
		a.c.log.Warn("agent token rejected: it is for another node", "token_node", claims.Subject, "path_node", truncateText(req.NodeIdent, 64))
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
			a.c.log.Info("agent token rejected: revoked", "node", out.UUID, "token_generation", claims.Generation, "node_generation", out.TokenGeneration)
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
	if out.ProvisionState == StateInspectWait {
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
	return a.settle(ctx, out.ID, claims.Generation, out.ProvisionState, cmd)
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
