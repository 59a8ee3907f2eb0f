package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// AgentNode is what the agent API reads of a node: its state, lock and
// agent token columns. Never driver_info (BMC credentials) nor
// driver_internal_info: the agent API's database role may not read them.
type AgentNode struct {
	Node
	TokenGeneration int64  `db:"agent_token_generation"`
	TokenRevealed   bool   `db:"agent_token_revealed"`
	CleanSteps      []byte `db:"clean_steps"` // JSON list of a manual clean's steps, or nil
}

const agentNodeColumns = `id, uuid, name, driver, properties, instance_info, provision_state,
	target_provision_state, provision_updated_at, maintenance, reservation, reservation_expires_at,
	lock_token, agent_token_generation, agent_token_revealed, clean_steps`

// GetAgentNodeByUUID returns the agent's view of a node.
func GetAgentNodeByUUID(ctx context.Context, q Querier, id string) (*AgentNode, error) {
	if !looksLikeUUID(id) {
		return nil, ErrNotFound // an agent's garbage must not reach the uuid cast
	}
	var n AgentNode
	err := q.GetContext(ctx, &n, `SELECT `+agentNodeColumns+` FROM nodes WHERE uuid = $1`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

// GetAgentNodeForUpdate reads the agent's view of a node and locks its row
// until the transaction ends.
func GetAgentNodeForUpdate(ctx context.Context, q Querier, id int64) (*AgentNode, error) {
	var n AgentNode
	err := q.GetContext(ctx, &n, `SELECT `+agentNodeColumns+` FROM nodes WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

// RevealAgentToken marks the token of generation as handed out and
// reports whether this call did it: of any number of concurrent lookups,
// exactly one wins. It reports false when the token of that generation was
// revealed before or the generation has moved on. The winner's note goes
// into the node's history in the same statement.
func RevealAgentToken(ctx context.Context, q Querier, nodeID, generation int64, note HistoryEvent) (bool, error) {
	res, err := q.ExecContext(ctx, `WITH revealed AS (
			UPDATE nodes SET agent_token_revealed = true
			WHERE id = $1 AND agent_token_generation = $2 AND NOT agent_token_revealed
			RETURNING id)
		INSERT INTO node_history (uuid, node_id, severity, event_type, event, conductor, user_name)
		SELECT $3, id, $4, $5, $6, $7, $8 FROM revealed`,
		nodeID, generation, uuid.NewString(), note.Severity, note.EventType, note.Event, note.Conductor, note.User)
	if err != nil {
		return false, translate(err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RevokeAgentTokens invalidates every agent token of the node by bumping its
// token generation, and allows the next lookup to reveal a new token. Call it
// whenever the agent that holds the current token is gone or must not act
// any more: power off or reboot, a new deploy, clean or inspection, an
// operator's action. With a fence it fails with ErrStale when the lock is no
// longer held; without one the caller holds the row lock.
func RevokeAgentTokens(ctx context.Context, q Querier, nodeID int64, f *Fence) error {
	args := []any{nodeID}
	res, err := q.ExecContext(ctx, `UPDATE nodes
		SET agent_token_generation = agent_token_generation + 1, agent_token_revealed = false
		WHERE id = $1`+f.clause(&args), args...)
	return staleResult(res, err)
}

// Checkin is what an agent reports when it checks in (native checkin or IPA
// heartbeat).
type Checkin struct {
	NodeUUID        string
	TokenGeneration int64 // of the token presented
	SourceAddress   string
	Protocol        string // "native" or "ipa"
	AgentVersion    *string
	AgentStatus     *string
	AgentURL        *string // IPA's callback_url
	AgentVerifyCA   *string // IPA's agent_verify_ca
	CommandName     *string
	CommandStatus   *string
	CommandError    *string
}

// CheckinOutcome is the node as the checkin found it and what was recorded.
type CheckinOutcome struct {
	AgentNode
	// Recorded is false when the token's generation is not the node's
	// (revoked) or, for IPA, when the agent URL or CA changed within a boot.
	Recorded bool `db:"recorded"`
	// PreviousURL, PreviousVerifyCA and PreviousGeneration are the agent
	// URL and CA recorded before and the generation they were recorded
	// under.
	PreviousURL        *string `db:"previous_url"`
	PreviousVerifyCA   *string `db:"previous_verify_ca"`
	PreviousGeneration *int64  `db:"previous_generation"`
	// PreviousCommand* are the last command's report of the checkin
	// before, when it came from the same boot (token generation): a
	// report equal to it is a repeat.
	PreviousCommandName   *string `db:"previous_command_name"`
	PreviousCommandStatus *string `db:"previous_command_status"`
	PreviousCommandError  *string `db:"previous_command_error"`
	// GivenInThisState is the command handed out to this boot's agent
	// since the node entered its current provision state (see
	// MarkCommandGiven), or nil.
	GivenInThisState *string `db:"given_in_this_state"`
}

// RecordCheckin reads the node and records the checkin in one statement (one
// indexed read, one write): the record is written only when the token's
// generation is still the node's and, for IPA, the agent URL has not changed
// within this generation. It returns what the checkin before reported, so
// that the caller can tell a new report from a repeat without another read.
// ErrNotFound when the node does not exist.
//
// properties and instance_info are read only for nodes in wait call-back,
// and clean_steps only in clean wait: the states in which a checkin needs
// them (the deploy and clean instructions).
func RecordCheckin(ctx context.Context, q Querier, c Checkin) (*CheckinOutcome, error) {
	if !looksLikeUUID(c.NodeUUID) {
		return nil, ErrNotFound
	}
	const query = `WITH node AS (
		SELECT id, uuid, name, driver,
			CASE WHEN provision_state = 'wait call-back' THEN properties ELSE '{}' END AS properties,
			CASE WHEN provision_state = 'wait call-back' THEN instance_info ELSE '{}' END AS instance_info,
			provision_state, target_provision_state, provision_updated_at, maintenance,
			reservation, reservation_expires_at, lock_token, agent_token_generation, agent_token_revealed,
			CASE WHEN provision_state = 'clean wait' THEN clean_steps END AS clean_steps
		FROM nodes WHERE uuid = $1
	), previous AS (
		SELECT agent_url, agent_verify_ca, token_generation, command_name, command_status, command_error,
			command_given, command_given_for
		FROM agent_checkins WHERE node_id = (SELECT id FROM node)
	), recorded AS (
		INSERT INTO agent_checkins AS a (node_id, token_generation, checked_in_at, source_address,
			protocol, agent_version, agent_status, agent_url, command_name, command_status, command_error,
			agent_verify_ca)
		SELECT node.id, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM node
		WHERE node.agent_token_generation = $2
		  AND NOT EXISTS (SELECT 1 FROM previous p
			WHERE p.token_generation = $2
			  AND ((p.agent_url IS NOT NULL AND $7::text IS NOT NULL AND p.agent_url <> $7::text)
			    OR (p.agent_verify_ca IS NOT NULL AND $11::text IS NOT NULL AND p.agent_verify_ca <> $11::text)))
		ON CONFLICT (node_id) DO UPDATE SET
			token_generation = EXCLUDED.token_generation, checked_in_at = EXCLUDED.checked_in_at,
			source_address = EXCLUDED.source_address, protocol = EXCLUDED.protocol,
			agent_version = EXCLUDED.agent_version, agent_status = EXCLUDED.agent_status,
			agent_url = COALESCE(EXCLUDED.agent_url, CASE WHEN a.token_generation = EXCLUDED.token_generation THEN a.agent_url END),
			agent_verify_ca = COALESCE(EXCLUDED.agent_verify_ca,
				CASE WHEN a.token_generation = EXCLUDED.token_generation THEN a.agent_verify_ca END),
			command_name = EXCLUDED.command_name, command_status = EXCLUDED.command_status,
			command_error = EXCLUDED.command_error,
			command_given = CASE WHEN a.token_generation = EXCLUDED.token_generation THEN a.command_given END,
			command_given_for = CASE WHEN a.token_generation = EXCLUDED.token_generation THEN a.command_given_for END
		RETURNING node_id
	)
	SELECT node.*, EXISTS (SELECT 1 FROM recorded) AS recorded,
		p.agent_url AS previous_url, p.agent_verify_ca AS previous_verify_ca, p.token_generation AS previous_generation,
		CASE WHEN p.token_generation = $2 THEN p.command_name END AS previous_command_name,
		CASE WHEN p.token_generation = $2 THEN p.command_status END AS previous_command_status,
		CASE WHEN p.token_generation = $2 THEN p.command_error END AS previous_command_error,
		CASE WHEN p.token_generation = $2 AND p.command_given_for IS NOT DISTINCT FROM node.provision_updated_at
			THEN p.command_given END AS given_in_this_state
	FROM node LEFT JOIN previous p ON true`
	var out CheckinOutcome
	err := q.GetContext(ctx, &out, query, c.NodeUUID, c.TokenGeneration, c.SourceAddress, c.Protocol,
		c.AgentVersion, c.AgentStatus, c.AgentURL, c.CommandName, c.CommandStatus, c.CommandError, c.AgentVerifyCA)
	if err != nil {
		return nil, translate(err)
	}
	return &out, nil
}

// MarkCommandGiven records that the agent of the token generation was handed
// action in the node's provision state, state, and writes note into the
// node's history, in one statement; it reports false (and writes nothing)
// when it was marked already for this stay in state, or the node or the
// generation moved on.
func MarkCommandGiven(ctx context.Context, q Querier, nodeID, generation int64, state, action string, note HistoryEvent) (bool, error) {
	res, err := q.ExecContext(ctx, `WITH given AS (
			UPDATE agent_checkins a SET command_given = $3, command_given_for = n.provision_updated_at
			FROM nodes n
			WHERE a.node_id = $1 AND n.id = $1 AND a.token_generation = $2 AND n.agent_token_generation = $2
			  AND n.provision_state = $10
			  AND (a.command_given IS DISTINCT FROM $3 OR a.command_given_for IS DISTINCT FROM n.provision_updated_at)
			RETURNING a.node_id)
		INSERT INTO node_history (uuid, node_id, severity, event_type, event, conductor, user_name)
		SELECT $4, node_id, $5, $6, $7, $8, $9 FROM given`,
		nodeID, generation, action, uuid.NewString(), note.Severity, note.EventType, note.Event, note.Conductor, note.User, state)
	if err != nil {
		return false, translate(err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// AgentCheckedInSince reports whether the agent holding the node's current
// token (the agent of this boot) checked in within the last within: it is
// presumably up, which fast track relies on.
func AgentCheckedInSince(ctx context.Context, q Querier, nodeID int64, within time.Duration) (bool, error) {
	var alive bool
	err := q.GetContext(ctx, &alive, `SELECT EXISTS (SELECT 1 FROM agent_checkins a JOIN nodes n ON n.id = a.node_id
		WHERE a.node_id = $1 AND a.token_generation = n.agent_token_generation
		  AND a.checked_in_at > now() - $2 * interval '1 millisecond')`, nodeID, millis(within))
	return alive, translate(err)
}

// AgentCheckin is a row of agent_checkins.
type AgentCheckin struct {
	NodeID          int64     `db:"node_id"`
	TokenGeneration int64     `db:"token_generation"`
	CheckedInAt     time.Time `db:"checked_in_at"`
	SourceAddress   string    `db:"source_address"`
	Protocol        string    `db:"protocol"`
	AgentVersion    *string   `db:"agent_version"`
	AgentStatus     *string   `db:"agent_status"`
	AgentURL        *string   `db:"agent_url"`
	CommandName     *string   `db:"command_name"`
	CommandStatus   *string   `db:"command_status"`
	CommandError    *string   `db:"command_error"`
}

// GetAgentCheckin returns the latest checkin of the node's agent.
func GetAgentCheckin(ctx context.Context, q Querier, nodeID int64) (*AgentCheckin, error) {
	var a AgentCheckin
	err := q.GetContext(ctx, &a, `SELECT node_id, token_generation, checked_in_at, source_address, protocol,
		agent_version, agent_status, agent_url, command_name, command_status, command_error
		FROM agent_checkins WHERE node_id = $1`, nodeID)
	if err != nil {
		return nil, translate(err)
	}
	return &a, nil
}
