package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/drivers"
)

// ErrAuthentication is wrapped in errors for a BMC that refused the session:
// wrong user name or password, or a privilege level the user may not have.
var ErrAuthentication = errors.New("BMC refused the credentials or privilege level (check ipmi_username, ipmi_password, ipmi_priv_level)")

// errCipherSuite marks a session refused because of the cipher suite.
var errCipherSuite = errors.New("BMC refused the cipher suite (check ipmi_cipher_suite)")

const (
	// closeSessionTimeout bounds the courtesy Close Session sent after an
	// operation, so a BMC that stops answering cannot hold the caller.
	closeSessionTimeout = 2 * time.Second
	// sessionsPerBMC bounds concurrent sessions this driver opens to one BMC.
	// BMCs have few session slots (often 4 or 5) shared with other tools.
	sessionsPerBMC = 2
)

// withSession runs fn inside a fresh RMCP+ session with the node's BMC and
// closes it afterwards. One session per operation: conductor operations are
// seconds to minutes apart, so caching buys little, while cached sessions go
// stale (BMC inactivity timeouts, BMC reboots, credential changes) and need
// go-ipmi's keep-alive goroutine. Errors name the operation, node and BMC.
func (d *Driver) withSession(ctx context.Context, n drivers.Node, op string, fn func(context.Context, *client.Client) error) error {
	cfg, err := parseInfo(n.DriverInfo)
	if err != nil {
		return opError(n, op, nil, err)
	}
	if err := d.session(ctx, cfg, fn); err != nil {
		return opError(n, op, cfg, err)
	}
	return nil
}

// session opens, uses and closes one session. It returns only once no
// goroutine of this operation can still touch the network.
func (d *Driver) session(ctx context.Context, cfg *config, fn func(context.Context, *client.Client) error) (err error) {
	defer func() {
		// go-ipmi does not always wrap the context's error (and flattens
		// session setup errors), so add it: callers test errors.Is.
		if ctxErr := contextError(ctx); err != nil && ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
	}()

	ip, err := resolve(ctx, cfg.address)
	if err != nil {
		return err
	}
	target := netip.AddrPortFrom(ip, uint16(cfg.port))
	release, err := d.limiter.acquire(ctx, target.String())
	if err != nil {
		return fmt.Errorf("waiting for a free session slot: %w", err)
	}
	defer release()

	sock := &socket{ctx: ctx, target: target}
	defer sock.shutdown()
	// A hung BMC must not outlive the deadline: end all I/O when ctx ends.
	stop := context.AfterFunc(ctx, sock.interrupt)
	defer stop()

	c, err := client.NewClient(ip.String(), cfg.port, cfg.username, cfg.password)
	if err != nil {
		return err // only a too long user name, which parseInfo refuses
	}
	c.WithTimeout(cfg.timeout).
		WithRetry(cfg.retries).
		WithCipherSuiteID(cfg.cipherSuite).
		WithMaxPrivilegeLevel(cfg.privLevel).
		WithUDPProxy(sock)

	if err := c.Connect(ctx); err != nil {
		sock.interrupt() // Close Session below must not wait for replies
		_ = c.Close(ctx) // stops go-ipmi's bookkeeping; fails fast
		return classifyConnectError(err)
	}
	err = fn(ctx, c)
	if contextError(ctx) == nil {
		// Free the BMC's session slot now rather than at its idle timeout.
		closeCtx, cancel := context.WithTimeout(ctx, min(closeSessionTimeout, cfg.timeout))
		stopClose := context.AfterFunc(closeCtx, sock.interrupt)
		_ = c.Close(closeCtx) // the operation's outcome is already known
		stopClose()
		cancel()
	} else {
		sock.interrupt()
		_ = c.Close(ctx) // stops go-ipmi's keep-alive goroutine
	}
	return err
}

// contextError is ctx.Err(), or DeadlineExceeded once the deadline has
// passed even if ctx's timer has not fired yet: go-ipmi sets its socket read
// deadline to ctx's, so the read can time out a moment before ctx is done.
func contextError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// resolve turns the address into one IP, honouring ctx for DNS.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolving %s: %w", host, err)
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("resolving %s: no address", host)
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil // BMC networks are mostly IPv4
		}
	}
	return ips[0], nil
}

// classifyConnectError marks credential and cipher failures. go-ipmi
// flattens session setup errors into text, so this matches the text the
// library itself produces for those errors.
func classifyConnectError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, client.ErrRAKPAuthentication.Error()) {
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	}
	for _, code := range []types.RmcpStatusCode{
		types.RmcpStatusCodeUnauthorizedName,
		types.RmcpStatusCodeInvalidRole,
		types.RmcpStatusCodeUnauthorizedRoleOfPriLevel,
		types.RmcpStatusCodeInvalidNameLength,
	} {
		if strings.Contains(msg, types.NewRmcpStatusError(code).Error()) {
			return fmt.Errorf("%w: %w", ErrAuthentication, err)
		}
	}
	for _, code := range []types.RmcpStatusCode{
		types.RmcpStatusCodeInvalidAuthAlg,
		types.RmcpStatusCodeInvalidIntegrityAlg,
		types.RmcpStatusCodeInvalidConfidentAlg,
		types.RmcpStatusCodeNoCipherSuiteMatch,
		types.RmcpStatusCodeNoMatchingAuthPayload,
		types.RmcpStatusCodeNoMatchingIntegrityPayload,
	} {
		if strings.Contains(msg, types.NewRmcpStatusError(code).Error()) {
			return fmt.Errorf("%w: %w", errCipherSuite, err)
		}
	}
	return fmt.Errorf("opening session: %w", err)
}

// opError names the operation, node and BMC. The message is kept on one
// line (go-ipmi's contain newlines) and can never show the password, even
// if a library ever quoted it; errors.Is and errors.As still see the chain.
func opError(n drivers.Node, op string, cfg *config, err error) error {
	where := "on node " + n.Label()
	if cfg != nil {
		where += " (BMC " + cfg.bmc() + ")"
	}
	wrapped := fmt.Errorf("ipmi %s %s: %w", op, where, err)
	msg := wrapped.Error()
	if cfg != nil && len(cfg.password) >= minRedactLen {
		msg = strings.ReplaceAll(msg, cfg.password, "***")
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if msg == wrapped.Error() {
		return wrapped
	}
	return &cleanError{msg: msg, err: wrapped}
}

// minRedactLen: shorter passwords would mangle unrelated text ("0" in "0x20")
// and are not at risk of being quoted by chance anyway.
const minRedactLen = 4

// cleanError shows a sanitised message and unwraps to the original.
type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// socket is the UDP socket go-ipmi uses, dialled through WithUDPProxy so the
// driver owns it. go-ipmi runs each read in a goroutine that holds a lock
// until its read deadline, even after the caller's context is done; closing
// the socket is what ends such a read at once. After interrupt, no new
// socket is dialled, and shutdown waits until no Read or Write is running,
// so no goroutine of the operation can block on the network afterwards.
type socket struct {
	ctx    context.Context
	target netip.AddrPort

	mu     sync.Mutex
	idle   *sync.Cond // signalled when active drops to 0
	conn   net.Conn
	closed bool
	active int // Reads and Writes in progress
}

var errSocketClosed = errors.New("operation finished or its deadline passed")

// Dial implements golang.org/x/net/proxy.Dialer for go-ipmi. addr is
// ignored: go-ipmi formats it without brackets for IPv6.
func (s *socket) Dial(network, _ string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSocketClosed
	}
	var d net.Dialer
	c, err := d.DialContext(s.ctx, network, s.target.String())
	if err != nil {
		return nil, err
	}
	if s.conn != nil {
		s.conn.Close() // go-ipmi redials only after closing its own
	}
	s.conn = c
	return &trackedConn{Conn: c, s: s}, nil
}

// interrupt closes the socket; blocked reads return at once.
func (s *socket) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
}

// shutdown interrupts and waits for in-flight I/O calls to return.
func (s *socket) shutdown() {
	s.interrupt()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.active > 0 {
		if s.idle == nil {
			s.idle = sync.NewCond(&s.mu)
		}
		s.idle.Wait()
	}
}

func (s *socket) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	return true
}

func (s *socket) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.idle != nil {
		s.idle.Broadcast()
	}
}

// trackedConn counts Reads and Writes for socket.shutdown.
type trackedConn struct {
	net.Conn
	s *socket
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if !c.s.begin() {
		return 0, net.ErrClosed
	}
	defer c.s.end()
	return c.Conn.Read(b)
}

func (c *trackedConn) Write(b []byte) (int, error) {
	if !c.s.begin() {
		return 0, net.ErrClosed
	}
	defer c.s.end()
	return c.Conn.Write(b)
}

// Close is a no-op: the socket belongs to the driver, which closes it.
// (go-ipmi's Close takes a lock a hung read may hold.)
func (c *trackedConn) Close() error { return nil }

// bmcLimiter bounds concurrent sessions per BMC; entries are dropped when
// unused, so the map holds only BMCs with operations in progress.
type bmcLimiter struct {
	mu    sync.Mutex
	slots map[string]*bmcSlots
}

type bmcSlots struct {
	sem   chan struct{}
	users int
}

func (l *bmcLimiter) acquire(ctx context.Context, key string) (release func(), err error) {
	l.mu.Lock()
	if l.slots == nil {
		l.slots = map[string]*bmcSlots{}
	}
	s := l.slots[key]
	if s == nil {
		s = &bmcSlots{sem: make(chan struct{}, sessionsPerBMC)}
		l.slots[key] = s
	}
	s.users++
	l.mu.Unlock()

	drop := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if s.users--; s.users == 0 {
			delete(l.slots, key)
		}
	}
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}
