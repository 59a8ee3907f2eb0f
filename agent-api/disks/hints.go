package disks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

const gib = 1 << 30

// MinRootDiskSize is the smallest disk SelectRoot picks when no hints are
// given (IPA's guess_root_disk default).
const MinRootDiskSize = 4 * gib

// hintKind is the type Ironic's VALID_ROOT_DEVICE_HINTS gives a hint.
type hintKind int

const (
	stringHint hintKind = iota
	sizeHint
	boolHint
)

// rootDeviceHints are the hints Ironic's API accepts, with their types.
var rootDeviceHints = map[string]hintKind{
	"size":                 sizeHint,
	"model":                stringHint,
	"wwn":                  stringHint,
	"serial":               stringHint,
	"vendor":               stringHint,
	"wwn_with_extension":   stringHint,
	"wwn_vendor_extension": stringHint,
	"name":                 stringHint,
	"rotational":           boolHint,
	"hctl":                 stringHint,
	"by_path":              stringHint,
}

const byPathPrefix = "/dev/disk/by-path/"

var numericOperators = map[string]func(a, b float64) bool{
	"=":  func(a, b float64) bool { return a >= b }, // legacy: Nova's "=" means ">="
	"==": func(a, b float64) bool { return a == b },
	"!=": func(a, b float64) bool { return a != b },
	"<":  func(a, b float64) bool { return a < b },
	"<=": func(a, b float64) bool { return a <= b },
	">":  func(a, b float64) bool { return a > b },
	">=": func(a, b float64) bool { return a >= b },
}

var stringOperators = map[string]func(a, b string) bool{
	"s==":  func(a, b string) bool { return a == b },
	"s!=":  func(a, b string) bool { return a != b },
	"s<":   func(a, b string) bool { return a < b },
	"s<=":  func(a, b string) bool { return a <= b },
	"s>":   func(a, b string) bool { return a > b },
	"s>=":  func(a, b string) bool { return a >= b },
	"<in>": func(a, b string) bool { return strings.Contains(a, b) },
}

// rootHint is one parsed hint.
type rootHint struct {
	name string
	kind hintKind
	spec spec // string and size hints
	want bool // boolean hints
	// numbers holds the operands of numeric operators, parsed once.
	numbers []float64
}

// ParseRootDeviceHints validates hints as Ironic's parse_root_device_hints
// does. It is exported so that the API can reject bad hints before a
// deployment starts; SelectRoot calls it too.
func ParseRootDeviceHints(hints map[string]any) error {
	_, err := parseRootDeviceHints(hints)
	return err
}

func parseRootDeviceHints(hints map[string]any) ([]rootHint, error) {
	var unknown []string
	for name := range hints {
		if _, ok := rootDeviceHints[name]; !ok {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		valid := make([]string, 0, len(rootDeviceHints))
		for name := range rootDeviceHints {
			valid = append(valid, name)
		}
		sort.Strings(valid)
		return nil, fmt.Errorf("unknown root device hints %s; valid hints are %s",
			strings.Join(unknown, ", "), strings.Join(valid, ", "))
	}

	names := make([]string, 0, len(hints))
	for name := range hints {
		names = append(names, name)
	}
	sort.Strings(names)
	parsed := make([]rootHint, 0, len(names))
	for _, name := range names {
		hint, err := parseRootHint(name, hints[name])
		if err != nil {
			return nil, fmt.Errorf("root device hint %q: %w", name, err)
		}
		parsed = append(parsed, hint)
	}
	return parsed, nil
}

func parseRootHint(name string, value any) (rootHint, error) {
	hint := rootHint{name: name, kind: rootDeviceHints[name]}
	switch hint.kind {
	case boolHint:
		b, err := parseBool(value)
		if err != nil {
			return hint, err
		}
		hint.want = b
		return hint, nil
	case sizeHint:
		return hint, hint.parseSize(value)
	default:
		s, ok := value.(string)
		if !ok {
			return hint, fmt.Errorf("%s is not a string", describeValue(value))
		}
		return hint, hint.parseString(s)
	}
}

// parseBool is oslo's bool_from_string(strict=True).
func parseBool(value any) (bool, error) {
	var s string
	switch v := value.(type) {
	case bool:
		return v, nil
	case string:
		s = v
	default:
		s = numberString(value)
		if s == "" {
			return false, fmt.Errorf("%s is not a boolean", describeValue(value))
		}
	}
	switch strings.ToLower(strings.TrimFunc(s, isPySpace)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, nil
	case "0", "f", "false", "off", "n", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true, false, yes, no, on, off, 1, 0)", s)
}

// numberString formats the number types a decoded JSON or YAML document
// can hold, integers as Python's str() would; "" for anything else.
func numberString(value any) string {
	switch v := value.(type) {
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case json.Number:
		return v.String()
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}

func describeValue(value any) string {
	if value == nil {
		return "null"
	}
	if b, err := marshalJSON(value); err == nil {
		return string(b)
	}
	return fmt.Sprintf("%v", value)
}

func (h *rootHint) parseSize(value any) error {
	var expression string
	switch v := value.(type) {
	case string:
		expression = v
	default:
		expression = numberString(value)
		if expression == "" {
			return fmt.Errorf("%s is not an integer", describeValue(value))
		}
	}
	extracted, err := extractHintExpression(expression)
	if err != nil {
		return fmt.Errorf("%q: %w", expression, err)
	}
	normalized := strings.ToLower(strings.TrimFunc(expression, isPySpace))
	if strings.HasPrefix(normalized, "<range-in>") && extracted.op != "<range-in>" {
		return fmt.Errorf("%q: write a range as \"<range-in> [ low high ]\", brackets and bounds separated by spaces", expression)
	}
	switch extracted.op {
	case "":
		normalized = "== " + normalized
	case "<range-in>":
		// Ironic's conductor accepts ranges for size (IPA's copy of the
		// parser does not): "<range-in> [ 10 100 )" in GiB.
		parsed, _ := parseSpec(normalized)
		return h.parseRange(expression, parsed)
	case "<or>":
	default:
		if _, ok := numericOperators[extracted.op]; !ok {
			// Ironic accepts these but they compare the size in GiB as a
			// string and so never (or always, or with an exception) match.
			return fmt.Errorf("%q: operator %s does not apply to sizes (use ==, !=, <, <=, >, >=, <or> or <range-in>)", expression, extracted.op)
		}
	}
	for _, v := range extracted.values {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q: %q is not an integer number of GiB", expression, v)
		}
		if n <= 0 {
			return fmt.Errorf("%q: the size must be a positive number of GiB", expression)
		}
	}
	h.spec, _ = parseSpec(normalized)
	for _, arg := range h.spec.args {
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return fmt.Errorf("%q: %q is not an integer number of GiB", expression, arg)
		}
		h.numbers = append(h.numbers, float64(n))
	}
	return nil
}

// parseRange validates what oslo's _range_in would otherwise reject only
// when it compares.
func (h *rootHint) parseRange(expression string, parsed spec) error {
	open, closing := parsed.args[0], parsed.args[3]
	if open != "[" && open != "(" {
		return fmt.Errorf("%q: a range starts with [ (inclusive) or ( (exclusive)", expression)
	}
	if closing != "]" && closing != ")" {
		return fmt.Errorf("%q: a range ends with ] (inclusive) or ) (exclusive)", expression)
	}
	low, err1 := parsePyFloat(parsed.args[1])
	high, err2 := parsePyFloat(parsed.args[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%q: the range bounds must be numbers of GiB", expression)
	}
	if low > high {
		return fmt.Errorf("%q: the lower bound is greater than the upper bound", expression)
	}
	h.spec = parsed
	h.numbers = []float64{low, high}
	return nil
}

func (h *rootHint) parseString(expression string) error {
	normalized, err := normalizeHintExpression(expression)
	if err != nil {
		return fmt.Errorf("%q: %w", expression, err)
	}
	parsed, _ := parseSpec(normalized)
	if parsed.op == "" {
		// Ironic's _append_operator_to_hints: a bare value means s==.
		normalized = "s== " + normalized
		parsed, _ = parseSpec(normalized)
	}
	switch {
	case parsed.op == "<all-in>" || parsed.op == "<range-in>":
		return fmt.Errorf("%q: operator %s compares lists and ranges, which a disk's %s is not", expression, parsed.op, h.name)
	case numericOperators[parsed.op] != nil:
		for _, arg := range parsed.args {
			n, err := parsePyFloat(arg)
			if err != nil {
				return fmt.Errorf("%q: operator %s compares numbers and %q is not one", expression, parsed.op, arg)
			}
			h.numbers = append(h.numbers, n)
		}
	case h.name == "name" || h.name == "by_path":
		parsed.args = h.completeDeviceNames(parsed)
	}
	h.spec = parsed
	return nil
}

// completeDeviceNames lets "sda" stand for "/dev/sda" in the name hint and
// "pci-0000:00:1f.2-ata-1" for its /dev/disk/by-path/ link in by_path.
func (h *rootHint) completeDeviceNames(parsed spec) []string {
	if parsed.op == "<in>" {
		return parsed.args
	}
	prefix := "/dev/"
	if h.name == "by_path" {
		prefix = byPathPrefix
	}
	args := make([]string, len(parsed.args))
	for i, arg := range parsed.args {
		if !strings.HasPrefix(arg, "/") {
			arg = prefix + arg
		}
		args[i] = arg
	}
	return args
}

// parsePyFloat accepts what Python's float() does for the values that can
// reach it here (no hexadecimal, which Go would take).
func parsePyFloat(s string) (float64, error) {
	t := strings.ToLower(strings.TrimLeft(s, "+-"))
	if strings.HasPrefix(t, "0x") || strings.Contains(t, "_") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseFloat(s, 64)
}

// matches reports whether the disk satisfies the hint.
func (h *rootHint) matches(d Disk) bool {
	switch h.kind {
	case boolHint:
		return d.Rotational == h.want
	case sizeHint:
		return h.matchesSize(float64(d.Size) / gib)
	}
	if h.name == "name" {
		return h.matchesName(d)
	}
	return h.matchesString(diskAttribute(d, h.name))
}

func (h *rootHint) matchesSize(sizeGiB float64) bool {
	switch h.spec.op {
	case "<range-in>":
		low, high := h.numbers[0], h.numbers[1]
		above := sizeGiB > low || (h.spec.args[0] == "[" && sizeGiB == low)
		below := sizeGiB < high || (h.spec.args[3] == "]" && sizeGiB == high)
		return above && below
	case "<or>":
		// Ironic compares the float size with the string operands here and
		// never matches; the documented intent is "one of these sizes".
		for _, n := range h.numbers {
			if sizeGiB == n {
				return true
			}
		}
		return false
	}
	compare := numericOperators[h.spec.op]
	return compare != nil && len(h.numbers) > 0 && compare(sizeGiB, h.numbers[0])
}

// matchesString compares a normalized disk attribute. Disks whose attribute
// is empty never match, as in Ironic.
func (h *rootHint) matchesString(raw string) bool {
	value, err := normalizeHintExpression(raw)
	if err != nil {
		return false
	}
	return h.compare(value, func(string) string { return value })
}

// matchesName compares /dev/disk/by-path/ operands with the disk's by-path
// link and the others with its kernel name.
func (h *rootHint) matchesName(d Disk) bool {
	name := d.Name
	if name != "" && !strings.HasPrefix(name, "/") {
		name = "/dev/" + name
	}
	normalizedName, nameErr := normalizeHintExpression(name)
	normalizedByPath, byPathErr := normalizeHintExpression(d.ByPath)
	if nameErr != nil {
		return false
	}
	return h.compare(normalizedName, func(operand string) string {
		if strings.HasPrefix(operand, byPathPrefix) {
			if byPathErr != nil {
				return ""
			}
			return normalizedByPath
		}
		return normalizedName
	})
}

// compare applies the hint's operator; valueFor picks the disk value an
// operand is compared with.
func (h *rootHint) compare(value string, valueFor func(operand string) string) bool {
	op := h.spec.op
	if compare := numericOperators[op]; compare != nil {
		n, err := parsePyFloat(value)
		// Ironic raises here, failing the whole selection; a disk whose
		// attribute is not a number simply does not match.
		return err == nil && len(h.numbers) > 0 && compare(n, h.numbers[0])
	}
	if op == "<or>" {
		for _, operand := range h.spec.args {
			if valueFor(operand) == operand {
				return true
			}
		}
		return false
	}
	compare := stringOperators[op]
	if compare == nil || len(h.spec.args) == 0 {
		return false // parseString admits no other operator
	}
	operand := h.spec.args[0]
	return compare(valueFor(operand), operand)
}

func diskAttribute(d Disk, hint string) string {
	switch hint {
	case "model":
		return d.Model
	case "vendor":
		return d.Vendor
	case "serial":
		return d.Serial
	case "wwn":
		return d.WWN
	case "wwn_with_extension":
		return d.WWNWithExtension
	case "wwn_vendor_extension":
		return d.WWNVendorExtension
	case "hctl":
		return d.HCTL
	case "by_path":
		return d.ByPath
	case "name":
		return d.Name
	}
	return ""
}

// ErrNoRootDisk is what SelectRoot's error Is when no disk qualifies (as
// opposed to invalid hints).
var ErrNoRootDisk = errors.New("no disk qualifies as the root device")

type noRootDiskError string

func (e noRootDiskError) Error() string        { return string(e) }
func (e noRootDiskError) Is(target error) bool { return target == ErrNoRootDisk }

// SelectRoot picks the disk to deploy on, as IPA's get_os_install_device:
// the first disk, in the order given, that satisfies every hint; without
// hints the smallest disk of at least MinRootDiskSize, ties broken by name.
// Unknown or invalid hints are an error, as Ironic's validation makes them.
func SelectRoot(disks []Disk, hints map[string]any) (Disk, error) {
	if len(hints) == 0 {
		return guessRootDisk(disks)
	}
	parsed, err := parseRootDeviceHints(hints)
	if err != nil {
		return Disk{}, err
	}
	for _, d := range disks {
		if matchesAll(d, parsed) {
			return d, nil
		}
	}
	return Disk{}, noRootDiskError(fmt.Sprintf("no disk matches root device hints %s; disks considered: %s",
		describeValue(hints), describeDisks(disks, parsed)))
}

func matchesAll(d Disk, hints []rootHint) bool {
	for i := range hints {
		if !hints[i].matches(d) {
			return false
		}
	}
	return true
}

func guessRootDisk(disks []Disk) (Disk, error) {
	sorted := append([]Disk(nil), disks...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Size != sorted[j].Size {
			return sorted[i].Size < sorted[j].Size
		}
		return sorted[i].Name < sorted[j].Name
	})
	for _, d := range sorted {
		if d.Size >= MinRootDiskSize {
			return d, nil
		}
	}
	return Disk{}, noRootDiskError(fmt.Sprintf("no root device hints were given and no disk has at least %d GiB; disks considered: %s",
		MinRootDiskSize/gib, describeDisks(disks, []rootHint{{name: "size", kind: sizeHint}})))
}

// describeDisks lists each disk with the attributes the hints look at, so
// that a node's last_error shows why none matched.
func describeDisks(disks []Disk, hints []rootHint) string {
	if len(disks) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(disks))
	for _, d := range disks {
		var attrs []string
		for _, h := range hints {
			switch h.kind {
			case sizeHint:
				attrs = append(attrs, "size "+strconv.FormatFloat(float64(d.Size)/gib, 'f', -1, 64)+" GiB")
			case boolHint:
				attrs = append(attrs, "rotational "+strconv.FormatBool(d.Rotational))
			default:
				if h.name == "name" && d.ByPath != "" {
					attrs = append(attrs, "by_path "+strconv.Quote(d.ByPath))
					continue
				}
				if h.name != "name" {
					attrs = append(attrs, h.name+" "+strconv.Quote(diskAttribute(d, h.name)))
				}
			}
		}
		name := d.Name
		if name == "" {
			name = d.Path
		}
		if len(attrs) == 0 {
			parts = append(parts, name)
			continue
		}
		parts = append(parts, name+" ("+strings.Join(attrs, ", ")+")")
	}
	return strings.Join(parts, "; ")
}
