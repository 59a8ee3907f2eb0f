package jsonbody

import (
	"unicode/utf8"

	"github.com/ferric-metal/ferric/shared/fault"
)

// CheckText refuses a body whose text Go's JSON decoder would silently
// alter: bytes that are not UTF-8, and \u escapes of UTF-16 surrogates that
// do not pair (a lone \ud800), both of which it replaces with U+FFFD, so
// that what is stored would not be what the client sent. It does not check
// the syntax; the decoder does.
func CheckText(body []byte) error {
	if !utf8.Valid(body) {
		for i := 0; i < len(body); {
			r, size := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && size <= 1 {
				return fault.New(fault.Invalid, "Invalid JSON body: the text is not valid UTF-8 (byte %d).", i)
			}
			i += size
		}
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		if i+1 < len(body) && body[i+1] == 'u' {
			r, ok := hex4(body, i+2)
			if ok && isHighSurrogate(r) {
				if low, ok := hex4(body, i+8); ok && i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' && isLowSurrogate(low) {
					i += 11 // the pair
					continue
				}
				return loneSurrogate(i)
			}
			if ok && isLowSurrogate(r) {
				return loneSurrogate(i)
			}
		}
		i++ // the escaped character cannot start an escape
	}
	return nil
}

func loneSurrogate(at int) error {
	return fault.New(fault.Invalid, "Invalid JSON body: a \\u escape at byte %d is half of a UTF-16 surrogate pair (not a character).", at)
}

func isHighSurrogate(r rune) bool { return r >= 0xd800 && r <= 0xdbff }
func isLowSurrogate(r rune) bool  { return r >= 0xdc00 && r <= 0xdfff }

// hex4 decodes the four hex digits at b[at:at+4].
func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
