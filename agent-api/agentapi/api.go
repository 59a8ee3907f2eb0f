// Package agentapi is Ferric's agent API: the only service deploy agents on
// the provisioning VLAN can reach. It offers lookup (which node am I?) and
// checkin, in Ferric's native form and in the form ironic-python-agent
// speaks, and nothing else: every other path is 404.
//
// The process holds no BMC credentials and runs no drivers; it reads and
// writes the database through the conductor library only.
package agentapi

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
)

// API holds the handlers' dependencies.
type API struct {
	conductor *conductor.Conductor
	db        health.Pinger
	log       *slog.Logger
}

// New returns the agent API over c.
func New(c *conductor.Conductor, db health.Pinger, log *slog.Logger) *API {
	return &API{conductor: c, db: db, log: log}
}

func (a *API) fail(c *gin.Context, err error) { apierror.Abort(c, a.log, err) }
