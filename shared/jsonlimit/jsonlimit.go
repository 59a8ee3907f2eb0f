// Package jsonlimit bounds the shape of untrusted JSON before it is decoded:
// nesting depth, elements per array and members per object, numbers (at
// most 32 characters, exponent within ±308: a float64's range, and what
// PostgreSQL's jsonb stores without blowing a few bytes up into kilobytes
// or refusing them), and no NUL characters (which jsonb refuses too). One
// pass over the bytes, no allocation unless a limit is broken. It does not
// check the syntax: the decoder that runs next does, and a malformed
// document passes here only to fail there.
package jsonlimit

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits bound a document.
type Limits struct {
	MaxDepth    int // nesting of arrays and objects; the document itself is depth 1
	MaxElements int // elements of one array, members of one object
}

// Error reports the broken limit and where, as a path such as
// inventory.interfaces or disks[3].
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

type frame struct {
	array     bool
	commas    int
	expectKey bool   // objects: the next string is a member name
	key       string // objects: the member being read
}

// Check reports the first limit doc breaks, as an *Error, or nil.
func Check(doc []byte, l Limits) error {
	var stack []frame
	inString, keyString := false, false
	var keyStart int
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if inString {
			switch c {
			case '\\':
				if i+5 < len(doc) && doc[i+1] == 'u' && string(doc[i+2:i+6]) == "0000" {
					return &Error{Path: path(stack, true), Reason: "NUL characters (\\u0000) are not allowed"}
				}
				i++ // the escaped character cannot end the string
			case '"':
				inString = false
				if keyString {
					top := &stack[len(stack)-1]
					top.key = string(doc[keyStart:min(i, keyStart+64)])
				}
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if c == '-' || (c >= '0' && c <= '9') {
			end := i
			for end < len(doc) && strings.IndexByte("0123456789+-.eE", doc[end]) >= 0 {
				end++
			}
			if !numberInRange(doc[i:end]) {
				return &Error{Path: path(stack, true), Reason: fmt.Sprintf("number %.40s is out of range (at most %d characters, exponent within ±%d)", doc[i:end], maxNumberLength, maxExponent)}
			}
			i = end - 1
			continue
		}
		switch c {
		case '"':
			inString, keyString = true, false
			if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].expectKey {
				keyString, keyStart = true, i+1
				stack[n-1].expectKey = false
			}
		case '{', '[':
			if len(stack)+1 > l.MaxDepth {
				return &Error{Path: path(stack, true), Reason: fmt.Sprintf("nested deeper than %d levels", l.MaxDepth)}
			}
			stack = append(stack, frame{array: c == '[', expectKey: c == '{'})
		case '}', ']':
			if len(stack) == 0 {
				return nil // malformed: the decoder will say so
			}
			stack = stack[:len(stack)-1]
		case ',':
			if len(stack) == 0 {
				return nil
			}
			top := &stack[len(stack)-1]
			top.commas++
			top.expectKey = !top.array
			if top.commas+1 > l.MaxElements {
				what := "members"
				if top.array {
					what = "elements"
				}
				return &Error{Path: path(stack, false), Reason: fmt.Sprintf("more than %d %s", l.MaxElements, what)}
			}
		}
	}
	return nil
}

const (
	maxNumberLength = 32
	maxExponent     = 308
)

// numberInRange reports whether a number literal is short and its exponent
// small. Malformed literals pass: the decoder refuses them.
func numberInRange(lit []byte) bool {
	if len(lit) > maxNumberLength {
		return false
	}
	e := strings.IndexAny(string(lit), "eE")
	if e < 0 {
		return true
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(string(lit[e+1:]), "+"))
	return err != nil || (exp >= -maxExponent && exp <= maxExponent)
}

// path names a position, e.g. inventory.interfaces[2]: the innermost open
// value itself, or with inside, the position within it.
func path(stack []frame, inside bool) string {
	var b strings.Builder
	for i, f := range stack {
		if i == len(stack)-1 && !inside {
			break
		}
		if f.array {
			b.WriteString("[" + strconv.Itoa(f.commas) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	return b.String()
}
