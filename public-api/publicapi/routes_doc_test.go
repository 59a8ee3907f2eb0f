package publicapi

import (
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAPIDocListsEveryRoute compares the endpoint table of docs/api.md with
// the routes the operator API serves, both ways: an endpoint added without
// its documentation, or documented but gone, fails.
func TestAPIDocListsEveryRoute(t *testing.T) {
	a := New(nil, NoAuth{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	byPath := map[string][]string{}
	for _, r := range a.engine().Routes() {
		p := paramPattern.ReplaceAllString(r.Path, "{}")
		byPath[p] = append(byPath[p], r.Method)
	}
	var served []string
	for p, methods := range byPath {
		if len(methods) >= 7 { // gin's Any
			served = append(served, "ANY "+p)
			continue
		}
		for _, m := range methods {
			served = append(served, m+" "+p)
		}
	}

	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") && !strings.HasPrefix(line, "| any verb `") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		method, prev := "", ""
		if strings.Contains(cell, "any verb") {
			method = "ANY"
		}
		for _, item := range codeSpan.FindAllStringSubmatch(cell, -1) {
			text := item[1]
			if m, rest, ok := strings.Cut(text, " "); ok && !strings.HasPrefix(text, "/") {
				method, text = m, rest
			}
			text, _, _ = strings.Cut(text, "?")
			if after, ok := strings.CutPrefix(text, "..."); ok { // relative to the item before
				first := strings.Split(strings.TrimPrefix(after, "/"), "/")[0]
				i := strings.LastIndex(prev, "/"+first)
				if i < 0 {
					t.Fatalf("docs/api.md: cannot resolve %q after %q", text, prev)
				}
				text = prev[:i] + after
			}
			if text != "/" {
				text = strings.TrimSuffix(text, "/")
			}
			prev = text
			documented = append(documented, method+" "+paramPattern.ReplaceAllString(text, "{}"))
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	documented = slices.Compact(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("served but not in docs/api.md: %s", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("in docs/api.md but not served: %s", d)
		}
	}
}

var (
	paramPattern = regexp.MustCompile(`:[a-z_]+|\{[A-Za-z_]+\}`)
	codeSpan     = regexp.MustCompile("`([^`]+)`")
)
