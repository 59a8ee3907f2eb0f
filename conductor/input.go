package conductor

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/shared/fault"
)

// Limits on operator-supplied text, as Ironic's (or, where Ironic has none,
// generous ones that keep rows small).
const (
	maxResourceClass  = 80
	maxOwner          = 255
	maxDescription    = 4096
	maxReason         = 4096
	maxPhysicalNet    = 64
	maxChassisDesc    = 255
	maxJSONDepth      = 32
	maxConductorGroup = 255
	maxPage           = 1000 // rows a list returns at most, as Ironic's max_limit
)

// Conductor groups are case-insensitive names, stored lower-cased.
var conductorGroupPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]*$`)

// checkText refuses text PostgreSQL cannot store (NUL, invalid UTF-8) and
// text longer than max characters, naming the field.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fault.New(fault.Invalid, "Invalid value for %s: the text contains a NUL character or invalid UTF-8.", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fault.New(fault.Invalid, "Invalid value for %s: %d characters, at most %d are allowed.", field, n, max)
	}
	return nil
}

func checkOptText(field string, s *string, max int) error {
	if s == nil {
		return nil
	}
	return checkText(field, *s, max)
}

// checkObject refuses JSON that PostgreSQL cannot store (NUL in keys or
// strings) or that is nested absurdly deep.
func checkObject(field string, m map[string]any) error {
	if err := checkJSONValue(m, 1); err != nil {
		return fault.New(fault.Invalid, "Invalid value for %s: %s.", field, err)
	}
	return nil
}

func checkJSONValue(v any, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	switch t := v.(type) {
	case string:
		if strings.ContainsRune(t, 0) {
			return fmt.Errorf("a string contains a NUL character")
		}
	case map[string]any:
		for k, e := range t {
			if strings.ContainsRune(k, 0) {
				return fmt.Errorf("a key contains a NUL character")
			}
			if err := checkJSONValue(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := checkJSONValue(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalizeConductorGroup checks a conductor group and lower-cases it.
func normalizeConductorGroup(g string) (string, error) {
	if len(g) > maxConductorGroup || !conductorGroupPattern.MatchString(g) {
		return "", fault.New(fault.Invalid, "Invalid value for conductor_group: %q; use letters, digits, '_', '-' and '.', at most %d.", g, maxConductorGroup)
	}
	return strings.ToLower(g), nil
}

// canonicalUUID returns s as a lower-case, hyphenated UUID, or an error
// naming field.
func canonicalUUID(field, s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", fault.New(fault.Invalid, "Invalid value for %s: expected a UUID but received %q.", field, s)
	}
	return u.String(), nil
}

// IsUUID reports whether s is a hyphenated UUID.
func IsUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Readers of a patched document's top-level members: each turns a missing
// member into its default and a value of the wrong type into a precise
// client error.

func docString(doc map[string]any, key string) (*string, error) {
	v, ok := doc[key]
	if !ok || v == nil {
		return nil, nil
	}
	s, isString := v.(string)
	if !isString {
		return nil, fault.New(fault.Invalid, "Invalid value for %s: expected a string or null.", key)
	}
	return &s, nil
}

func docObject(doc map[string]any, key string) (map[string]any, error) {
	v, ok := doc[key]
	if !ok {
		return map[string]any{}, nil
	}
	m, isObject := v.(map[string]any)
	if !isObject {
		return nil, fault.New(fault.Invalid, "Invalid value for %s: expected a JSON object.", key)
	}
	if err := checkObject(key, m); err != nil {
		return nil, err
	}
	return m, nil
}

func docBool(doc map[string]any, key string, def bool) (bool, error) {
	b, err := docOptBool(doc, key)
	if err != nil || b == nil {
		return def, err
	}
	return *b, nil
}

// docOptBool reads a boolean that may be null. Like Ironic, it also takes
// the strings oslo's bool_from_string knows ("true", "False", "yes", "0"...).
func docOptBool(doc map[string]any, key string) (*bool, error) {
	v, ok := doc[key]
	if !ok || v == nil {
		return nil, nil
	}
	if b, ok := LooseBool(v); ok {
		return &b, nil
	}
	return nil, fault.New(fault.Invalid, "Invalid value for %s: expected true or false.", key)
}

// LooseBool reads a JSON boolean, or a string Ironic takes for one.
func LooseBool(v any) (value, ok bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, true
		case "0", "f", "false", "off", "n", "no":
			return false, true
		}
	}
	return false, false
}

// joinKeys lists a sort key table's keys for messages.
func joinKeys(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// checkNetworkData checks a node's network_data as Ironic's schema does at
// its top level: empty, or the OpenStack network_data.json shape with its
// links, networks and services lists (their members are not checked
// further: the instance's first boot reads them).
func checkNetworkData(nd map[string]any) error {
	if len(nd) == 0 {
		return nil
	}
	for _, key := range []string{"links", "networks", "services"} {
		v, ok := nd[key]
		if !ok {
			return fault.New(fault.Invalid, "Invalid network_data: '%s' is a required property", key)
		}
		list, isList := v.([]any)
		if !isList {
			return fault.New(fault.Invalid, "Invalid network_data: %s must be a list", key)
		}
		for _, item := range list {
			if _, isObject := item.(map[string]any); !isObject {
				return fault.New(fault.Invalid, "Invalid network_data: the members of %s must be objects", key)
			}
		}
	}
	return nil
}
