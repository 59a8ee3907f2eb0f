package conductor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// nodeLock is a held node lock whose lease is renewed in the background
// until release. If renewal fails (the lease ran out, the database is gone
// for longer than the lease), the lock's context is cancelled: work under it
// must stop, and its fenced writes would be refused anyway.
type nodeLock struct {
	nodeID int64
	token  int64
	ctx    context.Context // cancelled when the lease is lost or released
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewer has exited
	once   sync.Once
}

// fence makes store writes conditional on still holding this lock.
func (l *nodeLock) fence() *store.Fence { return &store.Fence{Token: l.token} }

// lockNode takes a node's exclusive lock at once or fails with
// fault.Locked naming the holder.
func (c *Conductor) lockNode(ctx context.Context, node *store.Node) (*nodeLock, error) {
	token, err := store.AcquireNodeLock(ctx, c.db, node.ID, c.opts.Name, c.opts.LockTTL)
	var le *store.LockedError
	if errors.As(err, &le) {
		return nil, nodeLocked(node.UUID, le.Holder)
	}
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &nodeLock{nodeID: node.ID, token: token, ctx: lctx, cancel: cancel, done: make(chan struct{})}
	go c.renewLock(l) // exits when l.ctx ends (release or lease lost)
	return l, nil
}

func nodeLocked(node, holder string) error {
	return fault.New(fault.Locked, "Node %s is locked by host %s, please retry after the current operation is completed.", node, holder)
}

func (c *Conductor) renewLock(l *nodeLock) {
	defer close(l.done)
	tick := time.NewTicker(c.opts.LockTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
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

// release stops the renewer and frees the lock. Safe to call twice.
func (c *Conductor) release(l *nodeLock) {
	l.once.Do(func() {
		l.cancel()
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := store.ReleaseNodeLock(ctx, c.db, l.nodeID, l.token); err != nil {
			// The lease will expire on its own; nothing is held forever.
			c.log.Warn("releasing node lock failed; it will expire", "node_id", l.nodeID, "error", err)
		}
	})
}
