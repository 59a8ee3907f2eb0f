package store

import (
	"context"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Task is a row of the tasks table: one unit of durable work.
type Task struct {
	ID             int64      `db:"id"`
	Kind           string     `db:"kind"`
	Pool           string     `db:"pool"`
	NodeID         *int64     `db:"node_id"`
	Driver         *string    `db:"driver"`
	Args           JSONObject `db:"args"`
	State          string     `db:"state"`
	Attempt        int        `db:"attempt"`
	MaxAttempts    int        `db:"max_attempts"`
	TimeoutMS      int        `db:"timeout_ms"`
	RunAfter       time.Time  `db:"run_after"`
	Owner          *string    `db:"owner"`
	LeaseExpiresAt *time.Time `db:"lease_expires_at"`
	ClaimToken     int64      `db:"claim_token"`
	LastError      *string    `db:"last_error"`
	CreatedAt      time.Time  `db:"created_at"`
	StartedAt      *time.Time `db:"started_at"`
	FinishedAt     *time.Time `db:"finished_at"`
	// DriverCallAt is when the task began a driver call that must not be
	// made twice (MarkDriverCall); a run that finds it set was interrupted
	// after that call and must read the outcome instead.
	DriverCallAt *time.Time `db:"driver_call_at"`
}

// Task states.
const (
	TaskQueued  = "queued"
	TaskRunning = "running"
	TaskDone    = "done"
	TaskFailed  = "failed"
)

const taskColumns = `id, kind, pool, node_id, driver, args, state, attempt, max_attempts, timeout_ms, run_after,
	owner, lease_expires_at, claim_token, last_error, created_at, started_at, finished_at, driver_call_at`

// EnqueueTask inserts a queued task, filling in its ID. Call it in the
// transaction that makes the change the task continues, so both commit or
// neither does.
func EnqueueTask(ctx context.Context, q Querier, t *Task) error {
	if t.MaxAttempts == 0 {
		t.MaxAttempts = 1
	}
	return translate(q.GetContext(ctx, &t.ID, `INSERT INTO tasks (kind, pool, node_id, driver, args, max_attempts, timeout_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		t.Kind, t.Pool, t.NodeID, t.Driver, t.Args, t.MaxAttempts, t.TimeoutMS))
}

// CountQueued counts the pool's waiting tasks, stopping at limit so the cost
// stays bounded however long the queue is.
func CountQueued(ctx context.Context, q Querier, pool string, limit int) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM (
		SELECT 1 FROM tasks WHERE pool = $1 AND state = 'queued' LIMIT $2) AS waiting`, pool, limit)
	return n, translate(err)
}

// ClaimTasks takes up to n due tasks of pool for owner, leasing them for
// lease; only tasks of the given drivers (or of none) are taken. SKIP LOCKED
// lets any number of conductors claim at once without ever taking the same
// task twice.
func ClaimTasks(ctx context.Context, q Querier, pool, owner string, drivers []string, n int, lease time.Duration) ([]Task, error) {
	tasks := []Task{}
	err := q.SelectContext(ctx, &tasks, `UPDATE tasks
		SET state = 'running', owner = $2, attempt = attempt + 1, claim_token = claim_token + 1,
		    lease_expires_at = now() + $4 * interval '1 millisecond', started_at = now()
		WHERE id IN (
			SELECT id FROM tasks
			WHERE pool = $1 AND state = 'queued' AND run_after <= now()
			  AND (driver IS NULL OR driver = ANY($5))
			ORDER BY run_after, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		RETURNING `+taskColumns, pool, owner, n, millis(lease), pq.Array(drivers))
	return tasks, translate(err)
}

// RenewTaskLease extends the lease of a task still claimed under token.
func RenewTaskLease(ctx context.Context, q Querier, id, token int64, lease time.Duration) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks SET lease_expires_at = now() + $3 * interval '1 millisecond'
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token, millis(lease))
	return leaseResult(res, err)
}

// FinishTask ends a task claimed under token as done or failed.
func FinishTask(ctx context.Context, q Querier, id, token int64, state string, lastError *string) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks
		SET state = $3, last_error = $4, finished_at = now(), lease_expires_at = NULL
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token, state, lastError)
	return leaseResult(res, err)
}

// RetryTask puts a task claimed under token back in the queue to run after
// delay.
func RetryTask(ctx context.Context, q Querier, id, token int64, delay time.Duration, lastError *string) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks
		SET state = 'queued', owner = NULL, lease_expires_at = NULL, last_error = $4,
		    run_after = now() + $3 * interval '1 millisecond'
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token, millis(delay), lastError)
	return leaseResult(res, err)
}

// MarkDriverCall records, under the task's claim, that it is about to make a
// driver call that must not be repeated (a power action), so that whoever
// runs it next (after a crash, a lost lease, a stop) reads the outcome
// instead of calling again. ErrLeaseLost: the claim is gone; do not call.
func MarkDriverCall(ctx context.Context, q Querier, id, token int64) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks SET driver_call_at = now()
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token)
	return leaseResult(res, err)
}

// SetTaskNodeState records, under the task's claim, the provision state a
// task has just moved its node to (args.state), so that whoever recovers the
// task judges the node by the state the task last wrote, not the one it
// started in (a delete is cleaning by then).
func SetTaskNodeState(ctx context.Context, q Querier, id, token int64, state string) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks SET args = jsonb_set(args, '{state}', to_jsonb($3::text))
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token, state)
	return leaseResult(res, err)
}

// ClearDriverCall forgets a recorded driver call that failed (the driver
// returned an error, so nothing is to be read back): a retry calls again.
func ClearDriverCall(ctx context.Context, q Querier, id, token int64) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks SET driver_call_at = NULL
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token)
	return leaseResult(res, err)
}

// SnoozeTask puts a task claimed under token back in the queue without
// counting the attempt: it could not start (its node was locked).
func SnoozeTask(ctx context.Context, q Querier, id, token int64, delay time.Duration) error {
	res, err := q.ExecContext(ctx, `UPDATE tasks
		SET state = 'queued', owner = NULL, lease_expires_at = NULL, attempt = attempt - 1,
		    run_after = now() + $3 * interval '1 millisecond'
		WHERE id = $1 AND claim_token = $2 AND state = 'running'`, id, token, millis(delay))
	return leaseResult(res, err)
}

// ExpiredTask is a task taken over from a conductor that stopped renewing
// its lease; PreviousOwner is that conductor.
type ExpiredTask struct {
	Task
	PreviousOwner *string `db:"previous_owner"`
}

// ClaimExpiredTasks takes up to n running tasks whose lease ran out (their
// conductor died or lost the database) for owner to recover, bumping their
// claim token so the old owner can no longer finish them.
func ClaimExpiredTasks(ctx context.Context, q Querier, owner string, n int, lease time.Duration) ([]ExpiredTask, error) {
	tasks := []ExpiredTask{}
	err := q.SelectContext(ctx, &tasks, `WITH expired AS (
			SELECT id, owner AS previous_owner FROM tasks
			WHERE state = 'running' AND lease_expires_at <= now()
			ORDER BY lease_expires_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE tasks t
		SET owner = $1, claim_token = t.claim_token + 1, lease_expires_at = now() + $3 * interval '1 millisecond'
		FROM expired WHERE t.id = expired.id
		RETURNING `+prefixed("t.", taskColumns)+`, expired.previous_owner`, owner, n, millis(lease))
	return tasks, translate(err)
}

// DeleteFinishedTasks removes tasks that ended more than age ago.
func DeleteFinishedTasks(ctx context.Context, q Querier, age time.Duration) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM tasks
		WHERE state IN ('done', 'failed') AND finished_at < now() - $1 * interval '1 millisecond'`, millis(age))
	if err != nil {
		return 0, translate(err)
	}
	return res.RowsAffected()
}

// GetTask returns a task by id.
func GetTask(ctx context.Context, q Querier, id int64) (*Task, error) {
	var t Task
	if err := q.GetContext(ctx, &t, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id); err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// prefixed qualifies each column of a column list with prefix.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
