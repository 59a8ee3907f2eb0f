package disks

import (
	"strings"
	"unicode"
)

// This file ports the expression grammar of oslo.utils' specs_matcher, which
// Ironic uses for root device hints, including its quirks: pyparsing matches
// the operator literals without word boundaries and parses only a prefix of
// the expression, so "s==foo" is an operator and a value while "foo s== bar"
// is a single value.

// spec is a parsed specs_matcher expression: an operator (empty for a bare
// value) and its operands.
type spec struct {
	op   string
	args []string
}

// unaryOperators are tried in this order, as pyparsing's MatchFirst does:
// the first literal that prefixes the input wins, even when no operand
// follows it.
var unaryOperators = []string{
	"==", "=", "!=", "<in>", ">=", "<=", ">", "<",
	"s==", "s!=", "s<=", "s<", "s>=", "s>",
}

// keywordPrefixes cannot start an operand.
var keywordPrefixes = append(append([]string{}, unaryOperators...), "<all-in>", "<or>", "<range-in>")

// isPySpace is Python's str.isspace, which \s and str.strip use.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// skipParserSpace skips what pyparsing skips between tokens by default.
func skipParserSpace(s string, pos int) int {
	for pos < len(s) && strings.IndexByte(" \t\n\r", s[pos]) >= 0 {
		pos++
	}
	return pos
}

// operandAt reads an operand (pyparsing: ~keyword + Regex(r"\S+")) after
// optional whitespace.
func operandAt(s string, pos int) (string, int, bool) {
	pos = skipParserSpace(s, pos)
	if pos >= len(s) {
		return "", pos, false
	}
	for _, kw := range keywordPrefixes {
		if strings.HasPrefix(s[pos:], kw) {
			return "", pos, false
		}
	}
	end := strings.IndexFunc(s[pos:], isPySpace)
	if end == 0 {
		return "", pos, false
	}
	if end < 0 {
		end = len(s) - pos
	}
	return s[pos : pos+end], pos + end, true
}

// literalAt reports whether lit follows optional whitespace at pos.
func literalAt(s string, pos int, lit string) (int, bool) {
	pos = skipParserSpace(s, pos)
	if strings.HasPrefix(s[pos:], lit) {
		return pos + len(lit), true
	}
	return pos, false
}

// parseSpec parses the longest prefix of s that the grammar accepts, as
// pyparsing's parseString does. ok is false where pyparsing raises.
func parseSpec(s string) (spec, bool) {
	// disjunction: one or more "<or> operand"
	var alternatives []string
	for pos := 0; ; {
		next, ok := literalAt(s, pos, "<or>")
		if !ok {
			break
		}
		operand, after, ok := operandAt(s, next)
		if !ok {
			break
		}
		alternatives = append(alternatives, operand)
		pos = after
	}
	if len(alternatives) > 0 {
		return spec{op: "<or>", args: alternatives}, true
	}

	// nary: "<all-in>" one or more operands
	if pos, ok := literalAt(s, 0, "<all-in>"); ok {
		var operands []string
		for {
			operand, after, ok := operandAt(s, pos)
			if !ok {
				break
			}
			operands = append(operands, operand)
			pos = after
		}
		if len(operands) > 0 {
			return spec{op: "<all-in>", args: operands}, true
		}
	}

	// range: "<range-in>" and exactly four operands: ( low high ]
	if pos, ok := literalAt(s, 0, "<range-in>"); ok {
		var operands []string
		for len(operands) < 4 {
			operand, after, ok := operandAt(s, pos)
			if !ok {
				break
			}
			operands = append(operands, operand)
			pos = after
		}
		if len(operands) == 4 {
			return spec{op: "<range-in>", args: operands}, true
		}
	}

	// unary: the first operator literal that matches, then one operand
	start := skipParserSpace(s, 0)
	for _, op := range unaryOperators {
		if strings.HasPrefix(s[start:], op) {
			operand, _, ok := operandAt(s, start+len(op))
			if ok {
				return spec{op: op, args: []string{operand}}, true
			}
			break
		}
	}

	if operand, _, ok := operandAt(s, 0); ok {
		return spec{args: []string{operand}}, true
	}
	return spec{}, false
}

// pyQuote is urllib.parse.quote(s) with its default safe="/".
func pyQuote(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == '-', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// hintExpression is an expression split as Ironic's
// _extract_hint_operator_and_values does.
type hintExpression struct {
	op     string
	values []string
}

// errEmptyExpression and errUnparsable are distinguished so that messages
// can say what is wrong.
type expressionError string

func (e expressionError) Error() string { return string(e) }

const (
	errEmptyExpression expressionError = "the expression is empty"
	errUnparsable      expressionError = "the expression has an operator but no value"
)

// extractHintExpression lower-cases and trims the expression, finds its
// operator and splits the values on every occurrence of that operator.
func extractHintExpression(expression string) (hintExpression, error) {
	expression = strings.ToLower(strings.TrimFunc(expression, isPySpace))
	if expression == "" {
		return hintExpression{}, errEmptyExpression
	}
	parsed, ok := parseSpec(expression)
	if !ok {
		return hintExpression{}, errUnparsable
	}
	if parsed.op == "" {
		return hintExpression{values: []string{expression}}, nil
	}
	var values []string
	for _, v := range strings.Split(expression, parsed.op) {
		if v != "" {
			values = append(values, strings.TrimFunc(v, isPySpace))
		}
	}
	return hintExpression{op: parsed.op, values: values}, nil
}

// normalizeHintExpression is Ironic's _normalize_hint_expression: values
// are URL-quoted so that whitespace and operator characters inside them
// cannot be mistaken for grammar.
func normalizeHintExpression(expression string) (string, error) {
	extracted, err := extractHintExpression(expression)
	if err != nil {
		return "", err
	}
	quoted := make([]string, len(extracted.values))
	for i, v := range extracted.values {
		quoted[i] = " " + pyQuote(v) + " "
	}
	return strings.TrimFunc(extracted.op+strings.Join(quoted, extracted.op), isPySpace), nil
}
