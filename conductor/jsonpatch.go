package conductor

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/shared/fault"
)

// PatchOp is one operation of an RFC 6902 JSON Patch. As in Ironic, only
// add, replace and remove are accepted; move, copy and test are refused.
type PatchOp struct {
	Op    string
	Path  string          // an RFC 6901 JSON pointer, ~0 and ~1 escapes included
	Value json.RawMessage // nil when the operation carries no value
}

// patchRule says which top-level members of a resource a patch may touch.
type patchRule struct {
	resource  string          // "node", "port", "chassis": for messages
	patchable map[string]bool // members that may be patched
	required  map[string]bool // members that may not be removed
}

// parsedOp is a checked PatchOp.
type parsedOp struct {
	op    string
	path  string
	segs  []string // unescaped pointer segments; never empty
	value any
}

// parsePatch checks every operation before anything is applied, so that a
// bad patch is refused whole with a message naming the operation at fault.
func parsePatch(ops []PatchOp, rule patchRule) ([]parsedOp, error) {
	if len(ops) == 0 {
		return nil, fault.New(fault.Invalid, "The patch is empty: send a JSON list of add, replace or remove operations.")
	}
	out := make([]parsedOp, 0, len(ops))
	for i, op := range ops {
		switch op.Op {
		case "add", "replace", "remove":
		case "move", "copy", "test":
			return nil, fault.New(fault.Invalid, "Patch operation %d: %q is not supported; use add, replace or remove.", i, op.Op)
		default:
			return nil, fault.New(fault.Invalid, "Patch operation %d: invalid op %q; use add, replace or remove.", i, op.Op)
		}
		segs, err := parsePointer(op.Path)
		if err != nil {
			return nil, fault.New(fault.Invalid, "Patch operation %d: %s", i, err)
		}
		root := segs[0]
		if !rule.patchable[root] {
			if op.Op == "add" && len(segs) == 1 {
				return nil, fault.New(fault.Invalid, "Adding a new attribute (%s) to the root of the %s is not allowed.", op.Path, rule.resource)
			}
			return nil, fault.New(fault.Invalid, "Cannot patch %s: only %s can be updated on a %s.", op.Path, strings.Join(sortedKeys(rule.patchable), ", "), rule.resource)
		}
		if op.Op == "remove" && len(segs) == 1 && rule.required[root] {
			return nil, fault.New(fault.Invalid, "'/%s' is a mandatory attribute and can not be removed.", root)
		}
		p := parsedOp{op: op.Op, path: op.Path, segs: segs}
		if op.Op != "remove" {
			if op.Value == nil {
				return nil, fault.New(fault.Invalid, "Patch operation %d: %q needs a value.", i, op.Op)
			}
			if err := json.Unmarshal(op.Value, &p.value); err != nil {
				return nil, fault.Wrap(fault.Invalid, err, "Patch operation %d: the value is not valid JSON.", i)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePointer splits an RFC 6901 pointer into unescaped segments.
func parsePointer(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") || path == "/" {
		return nil, fmt.Errorf("invalid path %q: a path starts with / and names an attribute, e.g. /extra/rack", path)
	}
	raw := strings.Split(path[1:], "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		for j := 0; j < len(s); j++ {
			if s[j] == '~' && (j+1 == len(s) || (s[j+1] != '0' && s[j+1] != '1')) {
				return nil, fmt.Errorf("invalid path %q: ~ must be followed by 0 or 1", path)
			}
		}
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	if segs[0] == "" {
		return nil, fmt.Errorf("invalid path %q: empty attribute name", path)
	}
	return segs, nil
}

// applyPatch applies checked operations to doc in order, with RFC 6902
// semantics below the top level. At the top level, doc holds every patchable
// member (null when unset), so add and replace both set a member and remove
// deletes it; the caller turns a missing member back into its default.
func applyPatch(doc map[string]any, ops []parsedOp) error {
	for _, op := range ops {
		if err := applyOne(doc, op); err != nil {
			return fault.New(fault.Invalid, "Patch operation %s %s failed: %s", op.op, op.path, err)
		}
	}
	return nil
}

func applyOne(doc map[string]any, op parsedOp) error {
	if len(op.segs) == 1 {
		root := op.segs[0]
		if _, ok := doc[root]; !ok && op.op != "add" {
			return fmt.Errorf("the attribute is not set")
		}
		if op.op == "remove" {
			delete(doc, root)
		} else {
			doc[root] = op.value
		}
		return nil
	}
	parent, err := walk(doc, op.segs[:len(op.segs)-1])
	if err != nil {
		return err
	}
	last := op.segs[len(op.segs)-1]
	switch p := parent.(type) {
	case map[string]any:
		if _, ok := p[last]; !ok && op.op != "add" {
			return fmt.Errorf("the path does not exist")
		}
		if op.op == "remove" {
			delete(p, last)
		} else {
			p[last] = op.value
		}
		return nil
	case []any:
		return applyToList(doc, op, p, last)
	}
	return fmt.Errorf("the parent of the path is neither an object nor a list")
}

// applyToList changes a list member; lists are values, so the changed list
// is written back into its own parent.
func applyToList(doc map[string]any, op parsedOp, list []any, last string) error {
	var idx int
	if last == "-" && op.op == "add" {
		idx = len(list)
	} else {
		n, err := strconv.Atoi(last)
		if err != nil || n < 0 || (len(last) > 1 && last[0] == '0') {
			return fmt.Errorf("%q is not a list index", last)
		}
		limit := len(list)
		if op.op == "add" {
			limit++
		}
		if n >= limit {
			return fmt.Errorf("list index %d is out of range", n)
		}
		idx = n
	}
	var out []any
	switch op.op {
	case "add":
		out = append(append(append(make([]any, 0, len(list)+1), list[:idx]...), op.value), list[idx:]...)
	case "replace":
		out = append([]any(nil), list...)
		out[idx] = op.value
	case "remove":
		out = append(append(make([]any, 0, len(list)-1), list[:idx]...), list[idx+1:]...)
	}
	grand, err := walk(doc, op.segs[:len(op.segs)-2])
	if err != nil {
		return err
	}
	key := op.segs[len(op.segs)-2]
	switch g := grand.(type) {
	case map[string]any:
		g[key] = out
	case []any:
		i, _ := strconv.Atoi(key) // walk already checked it
		g[i] = out
	}
	return nil
}

// walk follows segs from doc and returns the value found.
func walk(doc map[string]any, segs []string) (any, error) {
	var cur any = doc
	for _, s := range segs {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[s]
			if !ok {
				return nil, fmt.Errorf("the path does not exist")
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(c) || (len(s) > 1 && s[0] == '0') {
				return nil, fmt.Errorf("the path does not exist")
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("the path does not exist")
		}
	}
	return cur, nil
}
