package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/hwinventory"
)

// Hardware is the machine the agent runs on: the real one or a simulation.
type Hardware interface {
	// Machine returns the machine's inventory and disks, read afresh.
	Machine(ctx context.Context) (*hwinventory.Machine, error)
	// PowerOff and Reboot stop or restart the machine (after syncing
	// disks). They do not return on a real machine; a simulated one logs
	// and returns errSimulatedPower.
	PowerOff() error
	Reboot() error
}

// BootFollower is implemented by simulated hardware whose power and boot
// source a simulated BMC holds: the agent runs only while the machine is on
// and booted into the agent, and each new boot (a reset, a power cycle)
// starts a new session, as on a real machine, where the conductor's power
// actions end the agent's process.
type BootFollower interface {
	// AgentBoot waits until the machine runs the agent and returns the
	// number of that boot.
	AgentBoot(ctx context.Context) (int, error)
	// BootNumber is the number of the machine's current boot, 0 when off.
	BootNumber() int
}

// errSimulatedPower is a simulated machine's answer to a power command: the
// agent behaves as if the machine went off, and "boots" again later.
var errSimulatedPower = errors.New("simulated power command")

// Agent is one deploy agent. Run it with Run.
type Agent struct {
	cfg    Config
	api    *Client
	images *http.Client // image servers and configdrive URLs
	hw     Hardware
	log    *slog.Logger
}

// New returns an agent of hw talking to the agent API with hc.
func New(cfg Config, hc *http.Client, hw Hardware, log *slog.Logger) *Agent {
	cfg = cfg.withDefaults()
	return &Agent{cfg: cfg, api: NewClient(cfg.APIURL, hc, cfg.RequestTimeout), images: hc, hw: hw, log: log}
}

// Run runs the agent until ctx ends: boot (lookup), then checkins, then, when
// the token is revoked, a new boot. It returns nil when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		bootNumber := 0
		if f, ok := a.hw.(BootFollower); ok {
			n, err := f.AgentBoot(ctx)
			if err != nil {
				break // ctx ended
			}
			bootNumber = n
		}
		s, err := a.boot(ctx, bootNumber)
		if err != nil {
			continue // ctx ended, or the machine was reset before a token came
		}
		a.serve(ctx, s)
	}
	return nil
}

// errBootEnded stops a boot whose machine was reset or powered off.
var errBootEnded = errors.New("the machine was reset or powered off")

// booted reports whether the machine is still in the boot numbered n.
func (a *Agent) booted(n int) bool {
	f, ok := a.hw.(BootFollower)
	return !ok || f.BootNumber() == n
}

// pause waits d, or until ctx ends, the machine leaves boot n, or done is
// closed. It reports whether the boot goes on.
func (a *Agent) pause(ctx context.Context, n int, d time.Duration, done <-chan struct{}) bool {
	step := d
	if _, ok := a.hw.(BootFollower); ok {
		step = min(d, 100*time.Millisecond)
	}
	deadline := time.Now().Add(d)
	for {
		t := time.NewTimer(min(step, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-done:
			t.Stop()
			return a.booted(n)
		case <-t.C:
		}
		if !a.booted(n) {
			return false
		}
		if !time.Now().Before(deadline) {
			return true
		}
	}
}

// session is one boot's state: the node, its token, and the command at work.
type session struct {
	boot     int // the machine's boot number (BootFollower), else 0
	node     string
	token    string
	interval time.Duration
	machine  *hwinventory.Machine
	current  *command      // the last command given, running or finished
	finished chan struct{} // closed by a command when it ends; nil between commands
}

// boot looks the machine up until the agent API hands out a token.
func (a *Agent) boot(ctx context.Context, bootNumber int) (*session, error) {
	var backoff backoff
	backoff.min, backoff.max = a.cfg.MinBackoff, a.cfg.MaxBackoff
	var m *hwinventory.Machine // read once a boot: ipmitool alone may take seconds
	for {
		var err error
		if m == nil {
			if m, err = a.hw.Machine(ctx); err != nil {
				a.log.Error("cannot inventory the machine", "error", err)
			}
		}
		if m != nil {
			res, err := a.api.Lookup(ctx, &m.Inventory)
			switch {
			case err == nil && res.Token == agentwire.MaskedToken:
				a.log.Warn("the token of this boot was handed out before: waiting for the next boot", "node", res.NodeUUID)
			case err == nil:
				a.log.Info("looked up", "node", res.NodeUUID, "provision_state", res.Node.ProvisionState, "checkin_interval", res.CheckinInterval)
				return &session{boot: bootNumber, node: res.NodeUUID, token: res.Token, interval: seconds(res.CheckinInterval), machine: m}, nil
			case statusOf(err) == http.StatusNotFound:
				a.log.Info("no node for this machine yet, or none that expects an agent", "error", err)
			default:
				a.log.Warn("lookup failed", "error", err)
			}
			if ra := retryAfterOf(err); ra > 0 {
				backoff.atLeast(ra)
			}
		}
		if !a.pause(ctx, bootNumber, backoff.next(), nil) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errBootEnded
		}
	}
}

// serve checks in until the token is rejected or ctx ends.
func (a *Agent) serve(ctx context.Context, s *session) {
	cmdCtx, cancelCommands := context.WithCancel(ctx)
	var commands sync.WaitGroup
	defer func() {
		cancelCommands()
		commands.Wait()
	}()
	var backoff backoff
	backoff.min, backoff.max = a.cfg.MinBackoff, min(a.cfg.MaxBackoff, 30*time.Second)
	for {
		req := &agentwire.CheckinRequest{AgentVersion: a.cfg.Version, Status: agentwire.StatusIdle}
		if c := s.current; c != nil {
			req.LastCommand = c.result()
			switch req.LastCommand.Status {
			case agentwire.CommandRunning:
				req.Status = agentwire.StatusBusy
			case agentwire.CommandFailed:
				req.Status = agentwire.StatusError
			}
		}
		resp, err := a.api.Checkin(ctx, s.token, req)
		wait := jitter(s.interval)
		switch {
		case err == nil:
			backoff.reset()
			if resp.Token != "" {
				s.token = resp.Token
				a.log.Info("adopted a renewed token", "node", s.node)
			}
			if resp.CheckinInterval > 0 {
				s.interval = seconds(resp.CheckinInterval)
				wait = jitter(s.interval)
			}
			if done := a.act(cmdCtx, &commands, s, resp); done {
				return
			}
		case statusOf(err) == http.StatusUnauthorized:
			a.log.Warn("the agent token was rejected (revoked by a power action or a new operation): looking up again", "node", s.node)
			return
		case ctx.Err() != nil:
			return
		default: // outages, 409 (locked), 429, 503: try again, never give up
			a.log.Warn("checkin failed", "node", s.node, "error", err)
			wait = backoff.next()
			if ra := retryAfterOf(err); ra > wait {
				wait = ra
			}
		}
		finished := s.finished // a finished command is reported at once
		if !a.pause(ctx, s.boot, wait, finished) {
			if ctx.Err() == nil {
				a.log.Info("the machine was reset or powered off: the agent's boot is over", "node", s.node)
			}
			return
		}
		if finished != nil {
			select {
			case <-finished:
				s.finished = nil
			default:
			}
		}
	}
}

// act carries out a checkin's answer. It reports whether this boot is over
// (the machine was powered off or rebooted).
func (a *Agent) act(ctx context.Context, commands *sync.WaitGroup, s *session, resp *agentwire.CheckinResponse) bool {
	switch resp.Action {
	case agentwire.ActionWait:
		return false
	case agentwire.ActionPowerOff, agentwire.ActionReboot:
		a.log.Info("powering the machine off as told", "node", s.node, "action", resp.Action)
		power := a.hw.PowerOff
		if resp.Action == agentwire.ActionReboot {
			power = a.hw.Reboot
		}
		if err := power(); err != nil && !errors.Is(err, errSimulatedPower) {
			a.log.Error("power command failed", "node", s.node, "action", resp.Action, "error", err)
			return false
		}
		if _, follows := a.hw.(BootFollower); !follows {
			sleep(ctx, a.cfg.PowerOffPause) // "off" for a while, then a new boot
		}
		return true
	}
	if s.current != nil && s.current.running() {
		if s.current.name != resp.Action {
			a.log.Warn("told to start a command while another runs: ignored", "node", s.node, "running", s.current.name, "given", resp.Action)
		}
		return false
	}
	run, ok := a.commandFor(resp.Action)
	if !ok {
		a.log.Warn("unknown action: ignored", "node", s.node, "action", resp.Action)
		return false
	}
	c := newCommand(resp.Action)
	s.current = c
	finished := make(chan struct{})
	s.finished = finished
	args := resp.Args
	commands.Add(1)
	go func() { // owned by serve: cancelled and awaited when the boot ends
		defer commands.Done()
		defer close(finished)
		start := time.Now()
		a.log.Info("command started", "node", s.node, "command", c.name)
		err := run(ctx, s, args)
		c.finish(err)
		if err != nil {
			a.log.Error("command failed", "node", s.node, "command", c.name, "error", err, "seconds", time.Since(start).Seconds())
			return
		}
		a.log.Info("command succeeded", "node", s.node, "command", c.name, "seconds", time.Since(start).Seconds())
	}()
	return false
}

// command is one command given to the agent, and its outcome.
type command struct {
	name string
	mu   sync.Mutex
	done bool
	err  error
}

func newCommand(name string) *command { return &command{name: name} }

func (c *command) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done, c.err = true, err
}

func (c *command) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.done
}

// maxReportedError is the agent API's bound on last_command.error.
const maxReportedError = 4096

func (c *command) result() *agentwire.CommandResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.done:
		return &agentwire.CommandResult{Name: c.name, Status: agentwire.CommandRunning}
	case c.err != nil:
		return &agentwire.CommandResult{Name: c.name, Status: agentwire.CommandFailed, Error: truncateUTF8(c.err.Error(), maxReportedError)}
	}
	return &agentwire.CommandResult{Name: c.name, Status: agentwire.CommandSuccess}
}

// commandFor returns the function that carries out an action.
func (a *Agent) commandFor(action string) (func(ctx context.Context, s *session, args json.RawMessage) error, bool) {
	switch action {
	case agentwire.ActionDeploy:
		return a.deploy, true
	case agentwire.ActionClean:
		return a.clean, true
	case agentwire.ActionInspect:
		return a.inspect, true
	}
	return nil, false
}

// backoff is a bounded exponential back-off with full jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	// Between half and all of the step, so that machines booted together
	// spread out.
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) atLeast(d time.Duration) {
	if b.cur < d {
		b.cur = min(d, b.max)
	}
}

func (b *backoff) reset() { b.cur = 0 }

// jitter spreads checkins by ±10% of the interval.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		d = 30 * time.Second
	}
	return d - d/10 + rand.N(d/5+1)
}

func seconds(n int) time.Duration {
	if n <= 0 {
		return 30 * time.Second
	}
	return time.Duration(n) * time.Second
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
