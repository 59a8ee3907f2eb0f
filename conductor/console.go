package conductor

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// ConsoleState is what GET /v1/nodes/{node}/states/console reports.
type ConsoleState struct {
	Enabled bool
	// Info is how to reach the console (nil while it is disabled); the
	// fake console has nothing to tell, as Ironic's: {}.
	Info map[string]any
}

// consoleWorks tells a console implementation from no-console.
func consoleWorks(impl string) bool { return impl != "" && impl != "no-console" }

// NodeConsole reports whether the node's console is enabled and how to
// reach it. As in Ironic, a disabled console is reported, whatever the
// driver; an enabled one whose interface has no console is refused (400).
func (c *Conductor) NodeConsole(ctx context.Context, ident string) (ConsoleState, error) {
	n, err := c.GetNode(ctx, ident)
	if err != nil {
		return ConsoleState{}, err
	}
	if !n.ConsoleEnabled {
		return ConsoleState{}, nil
	}
	if !consoleWorks(c.NodeInterface(n, "console")) {
		return ConsoleState{}, unsupportedConsole(n)
	}
	return ConsoleState{Enabled: true, Info: map[string]any{}}, nil
}

// SetConsoleMode enables or disables the node's console. Ferric's only
// console is the fake one, which records the mode; with no-console the
// request is refused (400), as Ironic does. Like every node change it is
// refused while the node's lock is held (409).
func (c *Conductor) SetConsoleMode(ctx context.Context, ident string, enabled bool, user string) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		if !consoleWorks(c.NodeInterface(n, "console")) {
			return unsupportedConsole(n)
		}
		if n.ConsoleEnabled == enabled {
			return nil
		}
		if err := store.SetConsoleEnabled(ctx, tx, n.ID, enabled); err != nil {
			return err
		}
		event := "Console disabled."
		if enabled {
			event = "Console enabled."
		}
		c.AddHistory(ctx, tx, n.ID, "INFO", "console", event, user)
		return nil
	})
}

func unsupportedConsole(n *store.Node) error {
	return unsupportedExtension(fault.Invalid, n.Driver, "console")
}
