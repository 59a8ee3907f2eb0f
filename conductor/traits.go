package conductor

import (
	"context"
	"errors"
	"regexp"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// maxTraitsPerNode is Ironic's limit on a node's traits.
const maxTraitsPerNode = 50

// customTrait is the shape of a trait outside os-traits' standard ones.
var customTrait = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)

// checkTrait accepts the traits Ironic does: a standard os-traits name, or
// CUSTOM_ and upper-case letters, digits and underscores; 255 at most.
func checkTrait(t string) error {
	if len(t) == 0 || len(t) > 255 || !(customTrait.MatchString(t) || standardTraits[t]) {
		return fault.New(fault.Invalid, "Invalid trait %q: a trait is a standard trait of os-traits or CUSTOM_ followed by upper-case letters, digits and underscores, at most 255 characters.", t)
	}
	return nil
}

// NodeTraits returns the node's traits, sorted.
func (c *Conductor) NodeTraits(ctx context.Context, ident string) ([]string, error) {
	n, err := c.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	return traitList(n), nil
}

func traitList(n *store.Node) []string {
	if n.Traits == nil {
		return []string{}
	}
	return n.Traits
}

// SetNodeTraits replaces the node's traits (duplicates count once).
func (c *Conductor) SetNodeTraits(ctx context.Context, ident string, traits []string, user string) error {
	distinct := map[string]bool{}
	for _, t := range traits {
		if err := checkTrait(t); err != nil {
			return err
		}
		distinct[t] = true
	}
	return c.changeTraits(ctx, ident, user, "Traits set.", func(tx *sqlx.Tx, n *store.Node) error {
		if err := checkTraitCount(n, len(distinct)); err != nil {
			return err
		}
		return store.SetNodeTraits(ctx, tx, n.ID, traits)
	})
}

// AddNodeTrait adds one trait to the node; one it has already is no change.
func (c *Conductor) AddNodeTrait(ctx context.Context, ident, trait, user string) error {
	if err := checkTrait(trait); err != nil {
		return err
	}
	return c.changeTraits(ctx, ident, user, "Trait added: "+trait, func(tx *sqlx.Tx, n *store.Node) error {
		if contains(n.Traits, trait) {
			return nil
		}
		if err := checkTraitCount(n, len(n.Traits)+1); err != nil {
			return err
		}
		return store.AddNodeTrait(ctx, tx, n.ID, trait)
	})
}

// RemoveNodeTrait removes one trait from the node (404 if it does not have
// it), or all of them when trait is "".
func (c *Conductor) RemoveNodeTrait(ctx context.Context, ident, trait, user string) error {
	event := "Trait removed: " + trait
	if trait == "" {
		event = "Traits removed."
	}
	return c.changeTraits(ctx, ident, user, event, func(tx *sqlx.Tx, n *store.Node) error {
		if trait == "" {
			return store.SetNodeTraits(ctx, tx, n.ID, nil)
		}
		err := store.RemoveNodeTrait(ctx, tx, n.ID, trait)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "Node %s doesn't have a trait '%s'", n.UUID, trait)
		}
		return err
	})
}

// changeTraits runs change on the node under its row lock, refused while
// the node's lock is held (409), and records it in the node's history.
func (c *Conductor) changeTraits(ctx context.Context, ident, user, event string, change func(*sqlx.Tx, *store.Node) error) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		if err := change(tx, n); err != nil {
			return err
		}
		c.AddHistory(ctx, tx, n.ID, "INFO", "traits", event, user)
		return nil
	})
}

func checkTraitCount(n *store.Node, count int) error {
	if count > maxTraitsPerNode {
		return fault.New(fault.Invalid, "Could not modify traits for node %s as it would exceed the maximum number of traits per node (%d vs. %d)",
			n.UUID, count, maxTraitsPerNode)
	}
	return nil
}
