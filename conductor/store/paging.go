package store

import (
	"fmt"
	"strings"
)

// sortOrder resolves a list's sort key against the keys its table allows
// (empty: def) and returns the key's SQL expression, the ORDER BY direction,
// and the comparison that selects the rows after a marker in that order.
// Lists page by keyset (sort value, id), so deep pages cost what the first does.
func sortOrder(keys map[string]string, key, def string, desc bool) (expr, dir, after string, err error) {
	expr, ok := keys[key]
	if key == "" {
		expr, ok = def, true
	}
	if !ok {
		return "", "", "", fmt.Errorf("store: unknown sort key %q", key)
	}
	if desc {
		return expr, "DESC", "<", nil
	}
	return expr, "ASC", ">", nil
}

// conditions collects a list query's WHERE conditions and numbers their
// arguments ($1, $2...) in the order they are added.
type conditions struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (c *conditions) arg(v any) string {
	c.args = append(c.args, v)
	return fmt.Sprintf("$%d", len(c.args))
}

// add adds a condition (built with arg).
func (c *conditions) add(cond string) { c.where = append(c.where, cond) }

// clause is " WHERE a AND b", or "" without conditions.
func (c *conditions) clause() string {
	if len(c.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.where, " AND ")
}
