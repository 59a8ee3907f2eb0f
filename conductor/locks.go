package conductor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// nodeLock is a held node lock whose lease is renewed in the background
// until it is released. If renewal fails (the lease ran out, the database
// was gone for longer than the lease), the lock's context is cancelled:
// work under it must stop, and its fenced writes would be refused anyway.
type nodeLock struct {
	nodeID   int64
	token    int64
	ctx      context.Context // cancelled when the lease is lost or released
	cancel   context.CancelFunc
	stop     chan struct{} // closed to stop renewal
	done     chan struct{} // closed when the renewer has exited
	stopOnce sync.Once
	released sync.Once
}

// fence makes store writes conditional on still holding this lock.
func (l *nodeLock) fence() *store.Fence { return &store.Fence{Token: l.token} }

// lockNode takes a node's exclusive lock at once or fails with
// fault.Locked naming the holder.
func (c *Conductor) lockNode(ctx context.Context, node *store.Node) (*nodeLock, error) {
	l, err := c.lockNodeID(ctx, node.ID)
	var le *store.LockedError
	if errors.As(err, &le) {
		return nil, nodeLocked(node.UUID, le.Holder)
	}
	return l, err
}

// lockNodeID takes a node's exclusive lock at once or fails with
// *store.LockedError.
func (c *Conductor) lockNodeID(ctx context.Context, nodeID int64) (*nodeLock, error) {
	token, err := store.AcquireNodeLock(ctx, c.db, nodeID, c.opts.Name, c.opts.LockTTL)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &nodeLock{nodeID: nodeID, token: token, ctx: lctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	go c.renewLock(l) // exits on stop, lease loss or ctx end
	return l, nil
}

func nodeLocked(node, holder string) error {
	return fault.Wrap(fault.Locked, errBusy, "Node %s is locked by host %s, please retry after the current operation is completed.", node, holder)
}

// errBusy is the cause of a refusal because other work on the node is under
// way (its lock is held, or a power change is pending): the request may
// succeed a moment later.
var errBusy = errors.New("the node is busy")

// Ironic's [conductor] node_locked_retry_attempts and
// node_locked_retry_interval: how an operator's request waits for a busy node.
const (
	busyRetryAttempts = 3
	busyRetryInterval = time.Second
)

// retryWhileBusy runs try, and again while it fails because the node is busy
// (errBusy), up to busyRetryAttempts times busyRetryInterval apart, as an
// Ironic conductor retries taking a node's lock before answering NodeLocked.
// Nothing is held between tries: each is its own transaction.
func (c *Conductor) retryWhileBusy(ctx context.Context, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		if !errors.Is(err, errBusy) || attempt == busyRetryAttempts {
			return err
		}
		sleep(ctx, busyRetryInterval)
		if ctx.Err() != nil {
			return err
		}
	}
}

func (c *Conductor) renewLock(l *nodeLock) {
	defer close(l.done)
	tick := time.NewTicker(c.opts.LockTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.stop:
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(l.ctx, c.opts.LockTTL/3)
		err := store.RenewNodeLock(rctx, c.db, l.nodeID, l.token, c.opts.LockTTL)
		cancel()
		if errors.Is(err, store.ErrLeaseLost) {
			c.log.Error("node lock lost; stopping the work under it", "node_id", l.nodeID)
			l.cancel()
			return
		}
		if err != nil && l.ctx.Err() == nil {
			// Transient: the lease still runs; the next tick retries.
			c.log.Warn("renewing node lock failed", "node_id", l.nodeID, "error", err)
		}
	}
}

func (c *Conductor) stopRenewal(l *nodeLock) {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// releaseWith makes the last write of the work under l and frees the lock
// in the same transaction, so that nobody sees the node's final state while
// its lock is still held (a client acting on it at once would get 409).
func (c *Conductor) releaseWith(l *nodeLock, write func(tx *sqlx.Tx) error) error {
	c.stopRenewal(l)
	err := store.Transact(l.ctx, c.db, func(tx *sqlx.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		return store.ReleaseNodeLock(l.ctx, tx, l.nodeID, l.token)
	})
	if err == nil {
		l.released.Do(l.cancel)
	}
	return err
}

// lockTaskNode starts a task's work on its node: it takes the node's lock
// (errNodeBusy if someone holds it: the task waits its turn), then reads the
// node under the lock and finds its driver. The caller releases the lock.
func (c *Conductor) lockTaskNode(ctx context.Context, t *store.Task) (*store.Node, *nodeLock, drivers.Driver, error) {
	lk, err := c.lockNodeID(ctx, *t.NodeID)
	var le *store.LockedError
	if errors.As(err, &le) {
		return nil, nil, nil, errNodeBusy
	}
	if err != nil {
		return nil, nil, nil, err
	}
	node, err := store.GetNodeByID(lk.ctx, c.db, *t.NodeID)
	if err != nil {
		c.release(lk)
		return nil, nil, nil, err
	}
	drv, err := c.driverOf(node)
	if err != nil {
		c.release(lk)
		return nil, nil, nil, err
	}
	return node, lk, drv, nil
}

// nodeForAction reads a node for an operator's request in tx, locking its
// row, and refuses with fault.Locked while a task holds the node.
func (c *Conductor) nodeForAction(ctx context.Context, tx store.Querier, ident string) (*store.Node, error) {
	n, err := c.nodeForUpdate(ctx, tx, ident)
	if err != nil {
		return nil, err
	}
	if holder := n.LockHolder(c.now()); holder != "" {
		return nil, nodeLocked(n.UUID, holder)
	}
	return n, nil
}

// release stops the renewer and frees the lock, unless releaseWith did.
// Safe to call twice.
func (c *Conductor) release(l *nodeLock) {
	l.released.Do(func() {
		c.stopRenewal(l)
		l.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := store.ReleaseNodeLock(ctx, c.db, l.nodeID, l.token); err != nil {
			// The lease will expire on its own; nothing is held forever.
			c.log.Warn("releasing node lock failed; it will expire", "node_id", l.nodeID, "error", err)
		}
	})
}
