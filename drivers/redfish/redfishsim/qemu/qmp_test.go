package qemu

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves a greeting and answers qmp_capabilities and query-status
// (after an event, which the client must skip); any other command gets no
// answer, like a qemu that hangs.
func fakeQMP(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	go func() {
		defer close(done)
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = conn.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			switch {
			case strings.Contains(sc.Text(), "qmp_capabilities"):
				_, _ = conn.Write([]byte(`{"return": {}}` + "\n"))
			case strings.Contains(sc.Text(), "query-status"):
				_, _ = conn.Write([]byte(`{"event": "RESET", "data": {}}` + "\n" + `{"return": {"status": "running", "running": true}}` + "\n"))
			}
		}
	}()
	return path
}

func TestQMPDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	q, err := dialQMP(ctx, fakeQMP(t), 200*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = q.Close() }()

	var st struct{ Status string }
	if err := q.Execute(ctx, "query-status", nil, &st); err != nil || st.Status != "running" {
		t.Fatalf("query-status = %+v, %v; want running", st, err)
	}
	// A command qemu never answers ends with the per-call timeout, and the
	// connection is not used again: its stream is out of step.
	if err := q.Execute(ctx, "cont", nil, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unanswered cont = %v; want a deadline error", err)
	}
	if err := q.Execute(ctx, "query-status", nil, &st); err == nil {
		t.Fatal("query-status on a broken connection succeeded")
	}
}

func TestQMPCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A long per-call timeout: only the context can end the call.
	q, err := dialQMP(ctx, fakeQMP(t), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = q.Close() }()
	// Cancel, not a deadline: the interrupt must come from the context.
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	timer := time.AfterFunc(100*time.Millisecond, ccancel)
	defer timer.Stop()
	if err := q.Execute(cctx, "cont", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled cont = %v; want context.Canceled", err)
	}
}

func TestQMPDialGone(t *testing.T) {
	gone := make(chan struct{})
	close(gone)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := dialQMP(ctx, filepath.Join(t.TempDir(), "none.sock"), time.Second, gone); err == nil || ctx.Err() != nil {
		t.Fatalf("dial with qemu gone = %v (ctx %v); want an error before the deadline", err, ctx.Err())
	}
}
