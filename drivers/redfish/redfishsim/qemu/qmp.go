package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmpConn is a synchronous QMP client: one command in flight, events are
// read and dropped. Nothing here starts a goroutine; every call is bounded
// by a connection deadline (the earlier of the context's and the per-call
// timeout), and a context cancelled mid-call interrupts it through the same
// deadline.
type qmpConn struct {
	timeout time.Duration

	mu     sync.Mutex
	conn   net.Conn
	dec    *json.Decoder
	broken error // set once the stream can no longer be trusted
}

// qmpError is an error answer of QMP.
type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

type qmpResponse struct {
	Return json.RawMessage `json:"return"`
	Error  *qmpError       `json:"error"`
	Event  string          `json:"event"`
	QMP    json.RawMessage `json:"QMP"`
}

// dialQMP connects to the QMP socket at path, retrying while qemu has not
// created it yet, until ctx ends or gone is closed (qemu exited). It then
// reads the greeting and leaves capabilities negotiation mode.
func dialQMP(ctx context.Context, path string, timeout time.Duration, gone <-chan struct{}) (*qmpConn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			q := &qmpConn{timeout: timeout, conn: conn, dec: json.NewDecoder(conn)}
			if err := q.handshake(ctx); err != nil {
				_ = conn.Close()
				return nil, err
			}
			return q, nil
		}
		// The socket appears a few milliseconds after qemu starts.
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("qmp: connect %s: %w (last: %v)", path, ctx.Err(), err)
		case <-gone:
			t.Stop()
			return nil, fmt.Errorf("qmp: connect %s: qemu exited", path)
		case <-t.C:
		}
	}
}

func (q *qmpConn) handshake(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	stop, err := q.arm(ctx)
	if err != nil {
		return err
	}
	defer stop()
	var greet qmpResponse
	if err := q.dec.Decode(&greet); err != nil {
		return fmt.Errorf("qmp: read greeting: %w", err)
	}
	if greet.QMP == nil {
		return errors.New("qmp: no greeting")
	}
	return q.roundTrip(ctx, "qmp_capabilities", nil, nil)
}

// arm sets the connection deadline for one call and makes ctx's
// cancellation interrupt it. Called with q.mu held.
func (q *qmpConn) arm(ctx context.Context) (stop func(), err error) {
	if q.broken != nil {
		return nil, q.broken
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(q.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := q.conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("qmp: set deadline: %w", err)
	}
	fired := make(chan struct{})
	after := context.AfterFunc(ctx, func() {
		_ = q.conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	// If the interrupt has already started, wait for it so that it cannot
	// land on the next call's deadline.
	return func() {
		if !after() {
			<-fired
		}
	}, nil
}

// Execute runs one QMP command and decodes its return value into out (which
// may be nil).
func (q *qmpConn) Execute(ctx context.Context, cmd string, args, out any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	stop, err := q.arm(ctx)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	defer stop()
	return q.roundTrip(ctx, cmd, args, out)
}

// roundTrip writes cmd and reads up to its answer. Called with q.mu held
// and the deadline armed. An I/O error leaves the stream in an unknown
// place, so the connection is marked broken.
func (q *qmpConn) roundTrip(ctx context.Context, cmd string, args, out any) error {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: encode: %w", cmd, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return q.fail(ctx, cmd, err)
	}
	for {
		var resp qmpResponse
		if err := q.dec.Decode(&resp); err != nil {
			return q.fail(ctx, cmd, err)
		}
		if resp.Event != "" {
			continue // asynchronous event: not the answer
		}
		if resp.Error != nil {
			return fmt.Errorf("qmp %s: %w", cmd, resp.Error)
		}
		if out != nil && resp.Return != nil {
			if err := json.Unmarshal(resp.Return, out); err != nil {
				return fmt.Errorf("qmp %s: decode: %w", cmd, err)
			}
		}
		return nil
	}
}

func (q *qmpConn) fail(ctx context.Context, cmd string, err error) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	q.broken = fmt.Errorf("qmp: connection unusable after %s: %w", cmd, err)
	return fmt.Errorf("qmp %s: %w", cmd, err)
}

// Close closes the connection.
func (q *qmpConn) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.broken == nil {
		q.broken = errors.New("qmp: closed")
	}
	return q.conn.Close()
}
