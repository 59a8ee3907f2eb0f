// Package builtin lists the drivers compiled into Ferric. It is the one place
// where a new driver is registered, and only the programs that drive BMCs
// (ferric-conductor, ferric-public-api, the ferric admin tool) import it: the
// agent API, which runs on the untrusted provisioning network, links no BMC
// code at all (agent-api's dependency test holds it to that).
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

// Enabled returns the compiled-in drivers with the named ones enabled
// (FERRIC_ENABLED_DRIVERS); an unknown name is an error.
func Enabled(names []string) (*drivers.Registry, error) {
	reg := Registry()
	if err := reg.Enable(names); err != nil {
		return nil, err
	}
	return reg, nil
}
