package conductor

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
)

// driverNode is what a driver is told about a node.
func driverNode(n *store.Node) drivers.Node {
	d := drivers.Node{UUID: n.UUID, DriverInfo: n.DriverInfo}
	if n.Name != nil {
		d.Name = *n.Name
	}
	return d
}

// driverOf returns the node's driver if this process has it enabled.
func (c *Conductor) driverOf(n *store.Node) (drivers.Driver, error) {
	d, ok := c.drivers.Get(n.Driver)
	if !ok {
		return nil, fmt.Errorf("driver %s of node %s is not enabled here", n.Driver, n.UUID)
	}
	return d, nil
}

// nodeForUpdate reads a node by UUID or name and locks its row for the
// transaction; a missing node, or an ident no node can have, is the
// client-facing not-found error.
func (c *Conductor) nodeForUpdate(ctx context.Context, q store.Querier, ident string) (*store.Node, error) {
	if !ValidNodeIdent(ident) {
		return nil, nodeNotFound(ident)
	}
	n, err := store.GetNodeForUpdate(ctx, q, ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nodeNotFound(ident)
	}
	return n, err
}

// requireConductor refuses work for a driver no live conductor serves: the
// task would wait forever.
func (c *Conductor) requireConductor(ctx context.Context, q store.Querier, driver string) error {
	var alive bool
	err := q.GetContext(ctx, &alive, `SELECT EXISTS (SELECT 1 FROM conductors
		WHERE $1 = ANY(drivers) AND heartbeat_at > now() - $2 * interval '1 millisecond')`,
		driver, conductorDeadAfter.Milliseconds())
	if err != nil {
		return err
	}
	if !alive {
		return fault.New(fault.Invalid, "No valid host was found. Reason: No conductor service registered which supports driver %s.", driver)
	}
	return nil
}
