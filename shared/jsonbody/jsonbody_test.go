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
