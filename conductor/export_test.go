package conductor

import (
	"testing"

	"github.com/jmoiron/sqlx"
)

// DBOf exposes the conductor's database to tests that need to set up states
// the public surface cannot reach yet.
func DBOf(_ testing.TB, c *Conductor) *sqlx.DB { return c.db }
