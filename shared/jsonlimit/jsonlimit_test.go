package jsonlimit_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/shared/jsonlimit"
)

func TestCheck(t *testing.T) {
	limits := jsonlimit.Limits{MaxDepth: 4, MaxElements: 3}
	for _, tc := range []struct {
		name, doc string
		wantPath  string // "" with wantErr false: accepted
		wantErr   bool
	}{
		{"flat object", `{"a": 1, "b": [1, 2, 3], "c": "x"}`, "", false},
		{"at the depth limit", `{"a": {"b": {"c": [1]}}}`, "", false},
		{"too deep", `{"a": {"b": {"c": [[1]]}}}`, "a.b.c[0]", true},
		{"too many elements", `{"inventory": {"interfaces": [{}, {}, {}, {}]}}`, "inventory.interfaces", true},
		{"too many members", `{"a": 1, "b": 2, "c": 3, "d": 4}`, "", true},
		{"commas inside strings do not count", `{"a": "x,y,z,w,v", "b": ["a,b,c,d"]}`, "", false},
		{"brackets inside strings do not nest", `{"a": "[[[[[[{{{{{"}`, "", false},
		{"escaped quote", `{"a": "\"[[[[[", "b": 1}`, "", false},
		{"NUL escape", `{"x": {"y": "a\u0000b"}}`, "x.y", true},
		{"escaped backslash before u0000 text", `{"a": "\\u0000"}`, "", false},
		{"malformed is left to the decoder", `]]]}}},,,`, "", false},
		{"ordinary numbers", `{"a": [-1, 0.5, 1e10], "b": [479559942144, -1.7976931348623157e+308, 4.9e-308]}`, "", false},
		{"huge exponent", `{"a": {"b": 1e999999}}`, "a.b", true},
		{"tiny exponent", `{"a": 1E-400}`, "a", true},
		{"a thousand digits", `{"a": ` + strings.Repeat("9", 1000) + `}`, "a", true},
		{"digits in strings are text", `{"a": "` + strings.Repeat("9", 1000) + `e99999"}`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := jsonlimit.Check([]byte(tc.doc), limits)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Check(%s) = %v, want error %v", tc.doc, err, tc.wantErr)
			}
			var le *jsonlimit.Error
			if err != nil && (!errors.As(err, &le) || le.Path != tc.wantPath) {
				t.Errorf("error %v: path %q, want %q", err, le.Path, tc.wantPath)
			}
		})
	}
}

func TestCheckHugeArray(t *testing.T) {
	doc := "[" + strings.Repeat("{},", 99_999) + "{}]"
	err := jsonlimit.Check([]byte(doc), jsonlimit.Limits{MaxDepth: 8, MaxElements: 4096})
	if err == nil || !strings.Contains(err.Error(), "more than 4096 elements") {
		t.Errorf("100,000 elements: %v", err)
	}
}
