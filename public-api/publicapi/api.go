// Package publicapi is Ferric's operator API: the subset of OpenStack Ironic's
// v1 REST API that the baremetal CLI, gophercloud and Metal3 speak. Handlers
// are thin: they bind and validate the request, call the conductor library
// with the request's context and render the result or the error.
package publicapi

import (
	"log/slog"
	"runtime"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
)

// API holds the handlers' dependencies.
type API struct {
	conductor *conductor.Conductor
	auth      Authenticator
	db        health.Pinger
	log       *slog.Logger
	auditLog  *slog.Logger
	// concurrency is how many requests served from the database run at
	// once (middleware.Admit).
	concurrency int
}

// Option configures an API.
type Option func(*API)

// WithAuditLog sends the audit records of mutating requests to l instead of
// the process log (where they carry audit=true).
func WithAuditLog(l *slog.Logger) Option { return func(a *API) { a.auditLog = l } }

// WithConcurrency sets how many requests served from the database run at
// once; more wait their turn. n <= 0 keeps the default, DefaultConcurrency.
func WithConcurrency(n int) Option {
	return func(a *API) {
		if n > 0 {
			a.concurrency = n
		}
	}
}

// DefaultConcurrency is how many requests served from the database run at
// once unless configured: two per CPU, at least four. With PostgreSQL on
// the same machine that keeps every CPU busy while the others wait their
// turn (more at once only lengthens the slowest responses: see
// docs/api.md); with PostgreSQL across a network, requests spend most of
// their time waiting for it, and more should run at once.
func DefaultConcurrency() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// New returns the operator API over c, authenticating callers with auth.
func New(c *conductor.Conductor, auth Authenticator, db health.Pinger, log *slog.Logger, opts ...Option) *API {
	a := &API{conductor: c, auth: auth, db: db, log: log, auditLog: log.With("audit", true),
		concurrency: DefaultConcurrency()}
	for _, opt := range opts {
		opt(a)
	}
	return a
}

// fail renders err in Ironic's format and stops the request.
func (a *API) fail(c *gin.Context, err error) { apierror.Abort(c, a.log, err) }
