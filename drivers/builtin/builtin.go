// Package builtin lists the drivers compiled into Ferric. It is the one place
// where a new driver is registered.
package builtin

import (
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/fake"
	"github.com/ferric-metal/ferric/drivers/ipmi"
	"github.com/ferric-metal/ferric/drivers/redfish"
)

// Registry returns a registry of every compiled-in driver, none enabled yet.
func Registry() *drivers.Registry {
	return drivers.NewRegistry(
		fake.New(),
		ipmi.New(),
		redfish.New(),
	)
}
