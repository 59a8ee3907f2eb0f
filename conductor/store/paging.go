package store

import "fmt"

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
