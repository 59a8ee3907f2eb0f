package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
)

func TestLimiterBoundsSessionsPerBMC(t *testing.T) {
	t.Parallel()
	var l bmcLimiter
	ctx := t.Context()
	var releases []func()
	for range sessionsPerBMC {
		r, err := l.acquire(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	// Another BMC is not affected.
	rb, err := l.acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	rb()

	// A further session to "a" waits, and gives up with its context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want to wait and time out, got %v", err)
	}
	// It gets the slot once one is released.
	got := make(chan error, 1)
	go func() {
		r, err := l.acquire(ctx, "a")
		if err == nil {
			r()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("acquired while full: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	releases[0]()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	releases[1]()

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.slots) != 0 {
		t.Errorf("idle BMCs kept in the map: %v", l.slots)
	}
}

func TestSocketShutdownEndsBlockedRead(t *testing.T) {
	t.Parallel()
	port, _ := silentBMC(t)
	s := &socket{ctx: t.Context(), target: netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port))}
	c, err := s.Dial("udp", "ignored")
	if err != nil {
		t.Fatal(err)
	}
	readDone := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16)) // no deadline: blocks until closed
		readDone <- err
	}()
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	s.shutdown()
	if took := time.Since(start); took > time.Second {
		t.Errorf("shutdown took %s", took)
	}
	s.mu.Lock()
	active := s.active
	s.mu.Unlock()
	if active != 0 {
		t.Fatalf("shutdown returned with %d I/O calls still running", active)
	}
	// The Read has returned; its goroutine reports it a moment later.
	select {
	case err := <-readDone:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the interrupted Read never returned")
	}
	if _, err := s.Dial("udp", "ignored"); err == nil {
		t.Error("dialled again after shutdown")
	}
	if _, err := c.Write([]byte{1}); err == nil {
		t.Error("wrote after shutdown")
	}
}

func TestErrorsAreOneLineAndRedacted(t *testing.T) {
	t.Parallel()
	n := drivers.Node{UUID: "uuid-1"}
	cfg := &config{address: "10.1.1.1", port: 623, password: "hunter22"}
	err := opError(n, "power on", cfg, fmt.Errorf("line one\nline two with hunter22: %w", context.Canceled))
	want := "ipmi power on on node uuid-1 (BMC 10.1.1.1:623): line one line two with ***: context canceled"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err.Error(), want)
	}
	if !errors.Is(err, context.Canceled) {
		t.Error("sanitising lost the error chain")
	}
}
