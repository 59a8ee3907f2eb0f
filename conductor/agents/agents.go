package agents

import (
	"errors"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/token"
)

// Options configure the agent side. Zero values take the defaults noted.
type Options struct {
	Keys   *token.Keys // agent token keys (the agent keys file); required
	Issuer string      // iss of agent tokens; required
	// TokenTTL is the lifetime of an agent token; a native checkin renews
	// it once half has passed. Default 1 h.
	TokenTTL time.Duration
	// CheckinInterval is how often agents are told to check in. Default
	// 30 s.
	CheckinInterval time.Duration
	Discovery       DiscoveryOptions
}

// Agents is the agent side of the conductor: lookup, checkin, heartbeat and
// inventory uploads. It never touches a BMC, and reads nodes only through
// store.AgentNode, without driver_info. Safe for concurrent use.
type Agents struct {
	c    *conductor.Conductor
	db   *sqlx.DB          // for transactions
	q    *store.PreparedDB // the hot paths' statements, prepared once
	log  *slog.Logger
	opts Options
	now  func() time.Time
}

// New returns the agent side of c.
func New(c *conductor.Conductor, opts Options) (*Agents, error) {
	if opts.Keys == nil || opts.Issuer == "" {
		return nil, errors.New("agent tokens need keys and an issuer")
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.CheckinInterval <= 0 {
		opts.CheckinInterval = 30 * time.Second
	}
	d, err := opts.Discovery.withDefaults()
	if err != nil {
		return nil, err
	}
	opts.Discovery = d
	return &Agents{c: c, db: c.DB(), q: store.NewPreparedDB(c.DB()), log: c.Logger(), opts: opts, now: time.Now}, nil
}

// Close releases the prepared statements of the agent side (not the
// database).
func (a *Agents) Close() error { return a.q.Close() }

// Conductor returns the conductor the agent side works for.
func (a *Agents) Conductor() *conductor.Conductor { return a.c }

// CheckinInterval is how often agents are told to check in.
func (a *Agents) CheckinInterval() time.Duration { return a.opts.CheckinInterval }

// history records an event of the agent side in the node's history.
func (a *Agents) history(nodeID int64, severity, event string) store.HistoryEvent {
	name := a.c.Name()
	return store.HistoryEvent{NodeID: nodeID, Severity: severity, EventType: "agent", Event: event, Conductor: &name}
}

// mintToken signs the agent token of the node's current generation.
func (a *Agents) mintToken(nodeUUID string, generation int64, ttl time.Duration) (string, error) {
	claims := token.Claims{Generation: generation}
	claims.Subject = nodeUUID
	return a.opts.Keys.Mint(claims, a.opts.Issuer, token.AudienceAgent, ttl, a.now())
}

// ipaTokenTTL is the lifetime of a token revealed to ironic-python-agent.
// IPA cannot renew one (a heartbeat's answer carries none) and looks up
// only once per boot, so its token must outlast the longest step it
// heartbeats through (a disk erase may take a day); Ironic's own agent
// tokens do not expire at all. Like every agent token it is revoked as
// soon as the node powers off, reboots or moves on.
const ipaTokenTTL = 7 * 24 * time.Hour

// errTokenRejected is the one answer to a bad agent token, whatever was
// wrong with it; the log says what.
var errTokenRejected = fault.New(fault.Unauthorized, "Invalid or missing agent token.")

// verifyToken checks an agent token's signature, key, algorithm, issuer,
// audience and expiry. The generation is checked against the node by the
// caller, in the same statement that reads it.
func (a *Agents) verifyToken(raw string) (*token.Claims, error) {
	if raw == "" {
		return nil, errTokenRejected
	}
	claims, err := a.opts.Keys.Verify(raw, a.opts.Issuer, token.AudienceAgent, a.now())
	if err != nil {
		a.log.Info("agent token rejected", "reason", err)
		return nil, errTokenRejected
	}
	if !conductor.IsUUID(claims.Subject) || claims.Generation <= 0 {
		a.log.Warn("agent token without a node or generation rejected", "subject", claims.Subject)
		return nil, errTokenRejected
	}
	return claims, nil
}

// renewedToken returns a fresh token of the same generation when more than
// half of the presented one's lifetime has passed, or "".
func (a *Agents) renewedToken(claims *token.Claims) (string, error) {
	if claims.ExpiresAt == nil || claims.ExpiresAt.Sub(a.now()) > a.opts.TokenTTL/2 {
		return "", nil
	}
	return a.mintToken(claims.Subject, claims.Generation, a.opts.TokenTTL)
}
