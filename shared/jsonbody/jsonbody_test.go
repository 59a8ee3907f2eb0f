package jsonbody_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/jsonbody"
)

type doc struct {
	Name  string         `json:"name"`
	Count int            `json:"count"`
	Info  map[string]any `json:"info"`
}

func TestDecode(t *testing.T) {
	for body, want := range map[string]string{
		`{"name": "x", "count": 2, "info": {}}`: "",
		`{"name": "x"`:                          "truncated",
		`{"name": x}`:                           "syntax error at byte",
		`{"nam": "x"}`:                          `Unknown attribute "nam"`,
		`{"count": "two"}`:                      "field count: expected a number",
		`{"info": []}`:                          "field info: expected an object",
		`{} []`:                                 "after the JSON document",
		`   `:                                   "empty",
		`[1]`:                                   "expected an object",
	} {
		var d doc
		err := jsonbody.Decode(strings.NewReader(body), &d)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		if fault.KindOf(err) != fault.Invalid || !strings.Contains(fault.Message(err), want) {
			t.Errorf("%s: %v (message %q), want invalid mentioning %q", body, err, fault.Message(err), want)
		}
	}
}

func TestDecodeTooLarge(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"name": "`+strings.Repeat("x", 100)+`"}`))
	body := http.MaxBytesReader(rec, req.Body, 10)
	var d doc
	if err := jsonbody.Decode(body, &d); fault.KindOf(err) != fault.TooLarge {
		t.Errorf("oversized body: %v", err)
	}
}

// TestCheckText: text the decoder would replace with U+FFFD is refused;
// everything else, pairs and escaped backslashes included, passes.
func TestCheckText(t *testing.T) {
	for body, want := range map[string]string{
		`{"name": "snow \u2603 man"}`:       "",
		`{"name": "clef \ud834\udd1e"}`:     "",
		`{"name": "clef \uD834\uDD1E"}`:     "",
		`{"name": "not an escape \\ud800"}`: "",
		"{\"name\": \"caf\u00e9 \u2603\"}":  "",
		`{"name": "\ud800"}`:                "byte 10 is half of a UTF-16 surrogate pair",
		`{"name": "\udc00\ud800"}`:          "surrogate",
		`{"name": "\ud800\u0041"}`:          "surrogate",
		`{"name": "\ud800`:                  "surrogate",
		`{"name": "\ud800\udc0"}`:           "surrogate",
		"{\"name\": \"a\xffb\"}":            "not valid UTF-8 (byte 11)",
		"{\"name\": \"\xed\xa0\x80\"}":      "not valid UTF-8", // a surrogate encoded as UTF-8
	} {
		err := jsonbody.CheckText([]byte(body))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", body, err)
			}
			continue
		}
		if fault.KindOf(err) != fault.Invalid || !strings.Contains(fault.Message(err), want) {
			t.Errorf("%q: %v, want invalid mentioning %q", body, err, want)
		}
	}
	var d doc
	if err := jsonbody.DecodeBytes([]byte(`{"name": "\ud800"}`), &d); fault.KindOf(err) != fault.Invalid {
		t.Errorf("DecodeBytes of a lone surrogate: %v (name %q)", err, d.Name)
	}
}
