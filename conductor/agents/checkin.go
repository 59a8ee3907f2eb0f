package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/token"
)

// The names of the protocol are agentwire's, which ferric-agent reads: the
// conductor side uses the same constants, so the two cannot drift.
const (
	ActionWait     = agentwire.ActionWait     // nothing to do: check in again later
	ActionDeploy   = agentwire.ActionDeploy   // write the image in args (agentwire.DeployArgs) to disk
	ActionClean    = agentwire.ActionClean    // clean the disks (agentwire.CleanArgs)
	ActionInspect  = agentwire.ActionInspect  // send the inventory (POST /v1/lookup), then report success
	ActionPowerOff = agentwire.ActionPowerOff // nothing will need this agent: shut the machine down
	ActionReboot   = agentwire.ActionReboot   // restart the machine (not handed out yet)

	CommandRunning = agentwire.CommandRunning // outcomes an agent reports
	CommandSuccess = agentwire.CommandSuccess
	CommandFailed  = agentwire.CommandFailed

	StatusIdle  = agentwire.StatusIdle // agent states an agent reports
	StatusBusy  = agentwire.StatusBusy
	StatusError = agentwire.StatusError
)

// Actions, CommandStatuses and AgentStatuses list the names above, for
// validation and for the test that holds them to agentwire's.
var (
	Actions         = []string{ActionWait, ActionDeploy, ActionClean, ActionInspect, ActionPowerOff, ActionReboot}
	CommandStatuses = []string{CommandRunning, CommandSuccess, CommandFailed}
	AgentStatuses   = []string{StatusIdle, StatusBusy, StatusError}
)

// waitActions maps each state that waits for an agent to what the agent
// must do; the agent's report of success resumes the node.
var waitActions = map[string]string{
	conductor.StateWaitCallback: ActionDeploy,
	conductor.StateCleanWait:    ActionClean,
	conductor.StateInspectWait:  ActionInspect,
}

// restStates are the states in which nothing needs an agent: without fast
// track, one checking in is told to power off.
var restStates = map[string]bool{
	conductor.StateEnroll: true, conductor.StateManageable: true, conductor.StateAvailable: true,
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
	Name   string // an action: deploy, clean, inspect, power_off, reboot
	Status string // running, success or failed
	Error  string // when failed: why, for the node's last_error
}

// Instruction is what a checkin tells the agent.
type Instruction struct {
	Action string
	// Args are the action's arguments: agentwire.DeployArgs for deploy,
	// agentwire.CleanArgs for clean, nil otherwise.
	Args            any
	CheckinInterval time.Duration
	// Token is a renewed agent token to use from now on, or "".
	Token string
}

func (r *CheckinRequest) check() error {
	if r.AgentVersion == "" || len(r.AgentVersion) > maxAgentVersion || !utf8.ValidString(r.AgentVersion) {
		return fault.New(fault.Invalid, "agent_version is required: a string of at most %d bytes.", maxAgentVersion)
	}
	if !slices.Contains(AgentStatuses, r.Status) {
		return fault.New(fault.Invalid, "Invalid status %q: use idle, busy or error.", r.Status)
	}
	if c := r.LastCommand; c != nil {
		if c.Name == ActionWait || !slices.Contains(Actions, c.Name) {
			return fault.New(fault.Invalid, "Invalid last_command.name %q: use deploy, clean, inspect, power_off or reboot.", c.Name)
		}
		if !slices.Contains(CommandStatuses, c.Status) {
			return fault.New(fault.Invalid, "Invalid last_command.status %q: use running, success or failed.", c.Status)
		}
		if len(c.Error) > maxCommandError || !utf8.ValidString(c.Error) {
			return fault.New(fault.Invalid, "last_command.error must be valid UTF-8 of at most %d bytes.", maxCommandError)
		}
	}
	return nil
}

// Checkin records that the agent is alive and tells it what to do next. On
// its common path (an agent repeating its report) it is one statement: one
// indexed read and one write. When the agent reports that the command its
// node waits for is done, the node resumes (a conductor task does the rest)
// or, if the command failed, fails; a command handed out for the first time
// in a state, and a report that differs from the last, are written to the
// node's history with a second statement.
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
		a.log.Info("agent token rejected: revoked", "node", out.UUID,
			"token_generation", id.claims.Generation, "node_generation", out.TokenGeneration)
		return nil, errTokenRejected
	}
	n := &out.AgentNode
	who := fmt.Sprintf("%s at %s", req.AgentVersion, sourceText(req.Source))
	instr := &Instruction{Action: ActionWait, CheckinInterval: a.opts.CheckinInterval}
	if cmd := req.LastCommand; cmd != nil && cmd.Name == waitActions[n.ProvisionState] && !n.Maintenance &&
		(cmd.Status == CommandSuccess || cmd.Status == CommandFailed) {
		if err := a.settle(ctx, n.ID, id.claims.Generation, n.ProvisionState, cmd, who); err != nil {
			return nil, err
		}
	} else {
		if cmd != nil && isNewReport(out, cmd) {
			a.noteReport(ctx, n.ID, cmd, who)
		}
		if instr.Action, instr.Args, err = a.nextAction(n, cmd); err != nil {
			return nil, err
		}
		if instr.Action != ActionWait && deref(out.GivenInThisState) != instr.Action {
			a.noteGiven(ctx, n, id.claims.Generation, instr.Action, who)
		}
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
		a.log.Info("agent token rejected: its node does not exist", "node", rec.NodeUUID)
		return nil, errTokenRejected
	}
	return out, err
}

// nextAction decides what the agent does next, given its node, and the
// action's arguments.
func (a *Agents) nextAction(n *store.AgentNode, last *CommandResult) (string, any, error) {
	if n.Maintenance {
		return ActionWait, nil, nil
	}
	if action, waiting := waitActions[n.ProvisionState]; waiting {
		if last != nil && last.Name == action && last.Status == CommandRunning {
			return ActionWait, nil, nil
		}
		switch action {
		case ActionDeploy:
			return action, deployArgs(n), nil
		case ActionClean:
			args, err := cleanArgs(n)
			return action, args, err
		}
		return action, nil, nil
	}
	if restStates[n.ProvisionState] && !a.c.FastTrack() {
		// At rest, without fast track to reuse a running agent: the machine
		// has no reason to stay up (a discovered node waits for its operator).
		return ActionPowerOff, nil, nil
	}
	return ActionWait, nil, nil // the conductor works on the node, or an operator must act
}

// deployArgs are the deploy-relevant members of the node's instance_info
// (the image and the disk layout, as Ironic names them) and its root device
// hints. Nothing else of instance_info is sent; these go only to the node's
// own agent, authenticated by its token. A member of the wrong type is not
// sent: the agent reports what it misses.
func deployArgs(n *store.AgentNode) agentwire.DeployArgs {
	info := n.InstanceInfo
	text := func(key string) string {
		s, _ := info[key].(string)
		return s
	}
	args := agentwire.DeployArgs{
		ImageSource: text("image_source"), ImageURL: text("image_url"), ImageChecksum: text("image_checksum"),
		ImageOSHashAlgo: text("image_os_hash_algo"), ImageOSHashValue: text("image_os_hash_value"),
		ImageDiskFormat: text("image_disk_format"), ImageType: text("image_type"),
		Kernel: text("kernel"), Ramdisk: text("ramdisk"),
		RootGB: info["root_gb"], SwapMB: info["swap_mb"], EphemeralGB: info["ephemeral_gb"],
		EphemeralFormat: text("ephemeral_format"), Configdrive: info["configdrive"],
	}
	if hints, ok := n.Properties["root_device"].(map[string]any); ok {
		args.RootDevice = hints
	}
	return args
}

// cleanArgs are the steps of the node's clean: the operator's (manual
// clean) or the conductor's defaults (automated clean), as the conductor
// stored them when the clean started.
func cleanArgs(n *store.AgentNode) (agentwire.CleanArgs, error) {
	var args agentwire.CleanArgs
	if len(n.CleanSteps) == 0 {
		return args, nil
	}
	if err := json.Unmarshal(n.CleanSteps, &args.CleanSteps); err != nil {
		return args, fmt.Errorf("clean steps of node %s: %w", n.UUID, err)
	}
	return args, nil
}

// isNewReport reports whether the agent's report differs from the one its
// checkin before made during this boot: repeats are not written to the
// history.
func isNewReport(out *store.CheckinOutcome, cmd *CommandResult) bool {
	return deref(out.PreviousCommandName) != cmd.Name || deref(out.PreviousCommandStatus) != cmd.Status ||
		deref(out.PreviousCommandError) != cmd.Error
}

// noteReport writes an agent's report that settles nothing into the node's
// history: progress (running), or the outcome of a command the node no
// longer waits for. History is an aid: failures are logged only.
func (a *Agents) noteReport(ctx context.Context, nodeID int64, cmd *CommandResult, who string) {
	e := a.history(nodeID, "INFO", fmt.Sprintf("Agent reported %s %s (%s).", cmd.Name, cmd.Status, who))
	if cmd.Status == CommandFailed {
		e.Severity, e.Event = "WARNING", fmt.Sprintf("Agent reported that %s failed: %s (%s).", cmd.Name, reasonOf(cmd), who)
	}
	if err := store.AddHistory(ctx, a.q, e); err != nil {
		a.log.Warn("writing node history failed", "node_id", nodeID, "error", err)
	}
}

// noteGiven records that the agent was handed action in the node's current
// state, and writes it into the history the first time only.
func (a *Agents) noteGiven(ctx context.Context, n *store.AgentNode, generation int64, action, who string) {
	e := a.history(n.ID, "INFO", fmt.Sprintf("Agent given %s (%s).", action, who))
	if _, err := store.MarkCommandGiven(ctx, a.q, n.ID, generation, n.ProvisionState, action, e); err != nil {
		a.log.Warn("writing node history failed", "node_id", n.ID, "error", err)
	}
}

// reasonOf is the reason a failed command gives, for last_error.
func reasonOf(cmd *CommandResult) string {
	if cmd.Error == "" {
		return "no reason given"
	}
	return cmd.Error
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
