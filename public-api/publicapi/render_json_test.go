package publicapi

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestAppendJSONMatchesEncodingJSON: the hand-written encoder must produce
// exactly what encoding/json would for the same values.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, "", "plain", `quote " back \ slash`, "tab\tnew\nline\rcr",
		"ctl \x00\x01\x1f del \x7f", "<script>&amp;</script>", "bad utf8 \xff\xfe end",
		"snow ☃ and 𝄞", "line\u2028sep\u2029para", 0.0, 1.0, -1.5, 42.0, 1e20, 1e21, 1e-6, 1e-7,
		123456789.125, -0.000001234, math.MaxFloat64, math.SmallestNonzeroFloat64, 3, int64(-7),
		[]string{"a", "b<"}, []string{}, []any{1.0, "x", nil, []any{}},
		map[string]any{"b": 1.0, "a": map[string]any{"z": []any{true}, "y": nil}, "": "empty key"},
		gin.H{"k": []gin.H{{"href": "h", "rel": "r"}}},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSON(nil, v); string(got) != string(want) {
			t.Errorf("appendJSON(%#v) = %s, encoding/json gives %s", v, got, want)
		}
	}
}

func TestDocKeepsFieldOrder(t *testing.T) {
	d := doc{{"z", 1}, {"a", selfLinks{"http://h", "nodes", "u"}}, {"m", []doc{{{"x", nil}}}}}
	want := `{"z":1,"a":[{"href":"http://h/v1/nodes/u","rel":"self"},{"href":"http://h/nodes/u","rel":"bookmark"}],"m":[{"x":null}]}`
	if got := string(appendJSON(nil, d)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if out, err := json.Marshal(map[string]any{"d": d}); err != nil || string(out) != `{"d":`+want+`}` {
		t.Errorf("nested in encoding/json: %s, %v", out, err)
	}
}
