package agents

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
)

// settle acts on the agent's report that the command its node waits for
// finished: success resumes the node, failure fails it with the agent's
// reason ("Agent reported that deploy failed: ..."). Both happen under the
// node's row lock, after checking that the token is still current and the
// node still waits in state. who names the agent for the history of a
// success ("" writes none: IPA's heartbeats report nothing).
func (a *Agents) settle(ctx context.Context, nodeID, generation int64, state string, cmd *CommandResult, who string) error {
	return store.Transact(ctx, a.db, func(tx *sqlx.Tx) error {
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
			return a.c.FailAgentWait(ctx, tx, &n.Node, fmt.Sprintf("Agent reported that %s failed: %s", cmd.Name, reasonOf(cmd)))
		}
		if state == conductor.StateInspectWait {
			gen, err := store.InventoryGeneration(ctx, tx, n.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err != nil || gen != generation {
				return a.c.FailAgentWait(ctx, tx, &n.Node,
					"Agent reported inspection done, but sent no inventory during this boot (POST /v1/lookup with its inventory).")
			}
		}
		if who != "" {
			a.c.AddHistory(ctx, tx, n.ID, "INFO", "agent", fmt.Sprintf("Agent reported %s %s (%s).", cmd.Name, cmd.Status, who), "")
		}
		_, err = a.c.ResumeAgentWait(ctx, tx, &n.Node)
		return err
	})
}
