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
}

// RecordCheckin reads the node and records the checkin in one statement (one
// indexed read, one write): the record is written only when the token's
// generation is still the node's and, for IPA, the agent URL has not changed
// within this generation. ErrNotFound when the node does not exist.
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
		SELECT agent_url, agent_verify_ca, token_generation FROM agent_checkins WHERE node_id = (SELECT id FROM node)
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
			command_error = EXCLUDED.command_error
		RETURNING node_id
	)
	SELECT node.*, EXISTS (SELECT 1 FROM recorded) AS recorded,
		(SELECT agent_url FROM previous) AS previous_url,
		(SELECT agent_verify_ca FROM previous) AS previous_verify_ca,
		(SELECT token_generation FROM previous) AS previous_generation
	FROM node`
	var out CheckinOutcome
	err := q.GetContext(ctx, &out, query, c.NodeUUID, c.TokenGeneration, c.SourceAddress, c.Protocol,
		c.AgentVersion, c.AgentStatus, c.AgentURL, c.CommandName, c.CommandStatus, c.CommandError, c.AgentVerifyCA)
	if err != nil {
		return nil, translate(err)
	}
	return &out, nil
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
