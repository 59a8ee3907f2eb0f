package store

import (
	"context"
	"errors"
	"time"
)

// Node locks are leases on the nodes row: reservation (the holder),
// reservation_expires_at, and lock_token, a fencing token that grows with
// every acquisition. Times come from the database clock so that hosts with
// skewed clocks agree on who holds what.

// ErrLeaseLost is returned when a lease (node lock or task claim) is no
// longer held: it expired and may belong to someone else now.
var ErrLeaseLost = errors.New("lease lost")

// LockedError reports a node lock held by someone else.
type LockedError struct{ Holder string }

func (e *LockedError) Error() string { return "node locked by " + e.Holder }

func millis(d time.Duration) int64 { return d.Milliseconds() }

// AcquireNodeLock takes the node's exclusive lock for owner for ttl, if it is
// free or its lease ran out, and returns the fencing token. A held lock is a
// *LockedError at once: callers never queue behind a lock.
func AcquireNodeLock(ctx context.Context, q Querier, nodeID int64, owner string, ttl time.Duration) (int64, error) {
	var token int64
	err := q.GetContext(ctx, &token, `UPDATE nodes
		SET reservation = $2,
		    reservation_expires_at = now() + $3 * interval '1 millisecond',
		    lock_token = lock_token + 1
		WHERE id = $1 AND (reservation IS NULL OR reservation_expires_at <= now())
		RETURNING lock_token`, nodeID, owner, millis(ttl))
	if err == nil {
		return token, nil
	}
	if err = translate(err); !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	var holder *string
	err = q.GetContext(ctx, &holder, `SELECT reservation FROM nodes WHERE id = $1`, nodeID)
	if err != nil {
		return 0, translate(err)
	}
	if holder == nil { // released between our two statements
		return 0, &LockedError{Holder: "(just released)"}
	}
	return 0, &LockedError{Holder: *holder}
}

// RenewNodeLock extends a lock still held under token.
func RenewNodeLock(ctx context.Context, q Querier, nodeID, token int64, ttl time.Duration) error {
	res, err := q.ExecContext(ctx, `UPDATE nodes
		SET reservation_expires_at = now() + $3 * interval '1 millisecond'
		WHERE id = $1 AND lock_token = $2 AND reservation_expires_at > now()`, nodeID, token, millis(ttl))
	return leaseResult(res, err)
}

// ReleaseNodeLock frees a lock held under token; releasing a lock already
// lost is not an error.
func ReleaseNodeLock(ctx context.Context, q Querier, nodeID, token int64) error {
	_, err := q.ExecContext(ctx, `UPDATE nodes SET reservation = NULL, reservation_expires_at = NULL
		WHERE id = $1 AND lock_token = $2`, nodeID, token)
	return translate(err)
}

type rowsAffecter interface{ RowsAffected() (int64, error) }

func leaseResult(res rowsAffecter, err error) error {
	if err != nil {
		return translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}
