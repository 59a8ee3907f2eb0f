package publicapi

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// doc is a rendered resource: its members in field-table order. Documents
// are written by appendJSON rather than encoding/json: a page of 100 nodes
// is thousands of small values, and walking them without reflection, map
// iteration or key sorting makes listing several times cheaper.
type doc []member

type member struct {
	key   string
	value any
}

// MarshalJSON lets a doc be nested in values encoding/json writes.
func (d doc) MarshalJSON() ([]byte, error) { return appendJSON(nil, d), nil }

// writeJSON answers with v as JSON, in a buffer reused across requests.
func writeJSON(c *gin.Context, status int, v any) {
	buf := buffers.Get().(*[]byte)
	*buf = appendJSON((*buf)[:0], v)
	c.Data(status, "application/json", *buf)
	if cap(*buf) <= maxPooledBuffer { // an occasional huge page is not kept
		buffers.Put(buf)
	}
}

const maxPooledBuffer = 1 << 20

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// appendJSON appends v as JSON. It knows the types documents are built
// from (and the ones JSON decoding produces); anything else goes through
// encoding/json. Objects built as maps get their keys sorted, as
// encoding/json does.
func appendJSON(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, t)
	case bool:
		return strconv.AppendBool(b, t)
	case int:
		return strconv.AppendInt(b, int64(t), 10)
	case int64:
		return strconv.AppendInt(b, t, 10)
	case float64:
		return appendFloat(b, t)
	case doc:
		b = append(b, '{')
		for i, m := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.key)
			b = append(b, ':')
			b = appendJSON(b, m.value)
		}
		return append(b, '}')
	case selfLinks:
		b = append(b, `[{"href":`...)
		b = appendString(b, t.base+"/v1/"+t.kind+"/"+t.id)
		b = append(b, `,"rel":"self"},{"href":`...)
		b = appendString(b, t.base+"/"+t.kind+"/"+t.id)
		return append(b, `,"rel":"bookmark"}]`...)
	case []doc:
		return appendArray(b, t, func(b []byte, d doc) []byte { return appendJSON(b, d) })
	case []string:
		return appendArray(b, t, appendString)
	case []any:
		return appendArray(b, t, appendJSON)
	case []gin.H:
		return appendArray(b, t, func(b []byte, e gin.H) []byte { return appendJSON(b, map[string]any(e)) })
	case gin.H:
		return appendJSON(b, map[string]any(t))
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, t[k])
		}
		return append(b, '}')
	}
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...) // documents hold nothing unencodable
	}
	return append(b, out...)
}

// appendArray appends xs as a JSON array, each element by appendElem.
func appendArray[T any](b []byte, xs []T, appendElem func([]byte, T) []byte) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendElem(b, x)
	}
	return append(b, ']')
}

// appendFloat formats numbers exactly as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...) // never produced by JSON decoding
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 -> e-9, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the ASCII bytes a JSON string holds as they are.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string with encoding/json's escaping:
// control characters, quotes and backslashes escaped, <, > and & as
// \u003c..., invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
