package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrStale is returned when a conditional write finds the node changed: not
// in the expected state, or its lock no longer held under the caller's token.
var ErrStale = errors.New("node changed underneath")

// Fence makes a node write conditional on the caller still holding the
// node's lock under Token. A nil *Fence writes unconditionally; the caller
// must then hold the row lock (SELECT ... FOR UPDATE) in its transaction.
type Fence struct{ Token int64 }

func (f *Fence) clause(args *[]any) string {
	if f == nil {
		return ""
	}
	*args = append(*args, f.Token)
	return fmt.Sprintf(" AND lock_token = $%d AND reservation_expires_at > now()", len(*args))
}

// Transition moves a node from provision state from to state to with the
// given target (nil clears it) and last_error (nil clears it). It fails with
// ErrStale when the node is no longer in from, or the fence does not hold.
func Transition(ctx context.Context, q Querier, nodeID int64, f *Fence, from, to string, target, lastError *string) error {
	args := []any{nodeID, from, to, target, lastError}
	res, err := q.ExecContext(ctx, `UPDATE nodes
		SET provision_state = $3, target_provision_state = $4, last_error = $5,
		    provision_updated_at = now(), updated_at = now()
		WHERE id = $1 AND provision_state = $2`+f.clause(&args), args...)
	return staleResult(res, err)
}

// SetPowerState records the node's power state and target (nil clears).
func SetPowerState(ctx context.Context, q Querier, nodeID int64, f *Fence, power, target *string) error {
	args := []any{nodeID, power, target}
	res, err := q.ExecContext(ctx, `UPDATE nodes
		SET power_state = $2, target_power_state = $3, updated_at = now()
		WHERE id = $1`+f.clause(&args), args...)
	return staleResult(res, err)
}

// SetTargetPowerState records a power change before it runs, and the node's
// last_error: nil clears it (an operator's new request), as Ironic does; a
// power off the conductor queues after a failure keeps the failure's.
func SetTargetPowerState(ctx context.Context, q Querier, nodeID int64, target string, lastError *string) error {
	res, err := q.ExecContext(ctx, `UPDATE nodes SET target_power_state = $2, last_error = $3, updated_at = now()
		WHERE id = $1`, nodeID, target, lastError)
	return staleResult(res, err)
}

// SetLastError records (or, with nil, clears) the node's last error.
func SetLastError(ctx context.Context, q Querier, nodeID int64, f *Fence, lastError *string) error {
	args := []any{nodeID, lastError}
	res, err := q.ExecContext(ctx, `UPDATE nodes SET last_error = $2, updated_at = now()
		WHERE id = $1`+f.clause(&args), args...)
	return staleResult(res, err)
}

// MergeProperties merges props into the node's properties.
func MergeProperties(ctx context.Context, q Querier, nodeID int64, f *Fence, props JSONObject) error {
	args := []any{nodeID, props}
	res, err := q.ExecContext(ctx, `UPDATE nodes SET properties = properties || $2, updated_at = now()
		WHERE id = $1`+f.clause(&args), args...)
	return staleResult(res, err)
}

// SetCleanSteps records the steps the node's agent is to clean with: a
// manual clean's, or an automated clean's defaults (nil clears them).
func SetCleanSteps(ctx context.Context, q Querier, nodeID int64, f *Fence, steps []any) error {
	var raw []byte
	if steps != nil {
		var err error
		if raw, err = json.Marshal(steps); err != nil {
			return err
		}
	}
	args := []any{nodeID, raw}
	res, err := q.ExecContext(ctx, `UPDATE nodes SET clean_steps = $2 WHERE id = $1`+f.clause(&args), args...)
	return staleResult(res, err)
}

// ClearInstance forgets the node's instance at tear-down: instance_info and
// instance_uuid, as Ironic does (it keeps no member of instance_info).
func ClearInstance(ctx context.Context, q Querier, nodeID int64, f *Fence) error {
	args := []any{nodeID}
	res, err := q.ExecContext(ctx, `UPDATE nodes SET instance_info = '{}', instance_uuid = NULL, updated_at = now()
		WHERE id = $1`+f.clause(&args), args...)
	return staleResult(res, err)
}

// MergeInstanceInfo merges info into the node's instance_info.
func MergeInstanceInfo(ctx context.Context, q Querier, nodeID int64, info JSONObject) error {
	res, err := q.ExecContext(ctx, `UPDATE nodes SET instance_info = instance_info || $2, updated_at = now()
		WHERE id = $1`, nodeID, info)
	return staleResult(res, err)
}

// GetNodeForUpdate reads a node and locks its row until the transaction ends.
func GetNodeForUpdate(ctx context.Context, q Querier, ident string) (*Node, error) {
	var n Node
	col := "name"
	if looksLikeUUID(ident) {
		col = "uuid"
	}
	err := q.GetContext(ctx, &n, `SELECT `+nodeColumns+` FROM nodes WHERE `+col+` = $1 FOR UPDATE`, ident)
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

func staleResult(res rowsAffecter, err error) error {
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrStale
	}
	return nil
}
