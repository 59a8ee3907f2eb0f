package agentapi_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/pgtest"
)

// TestNginxSnippetMatchesRoutes holds deployments/nginx/ferric-agent-api.conf
// to the agent API's routes: every route but /healthz passes the proxy
// with exactly its verbs, and the proxy passes nothing else.
func TestNginxSnippetMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t, pgtest.NewDB(t), stackOptions{})
	engine, ok := s.handler.(*gin.Engine)
	if !ok {
		t.Fatalf("the agent API's handler is a %T, not a gin engine", s.handler)
	}
	served := map[string][]string{} // path -> verbs
	for _, r := range engine.Routes() {
		if r.Path != "/healthz" {
			served[r.Path] = append(served[r.Path], r.Method)
		}
	}

	conf, err := os.ReadFile("../../deployments/nginx/ferric-agent-api.conf")
	if err != nil {
		t.Fatal(err)
	}
	location := regexp.MustCompile(`(?m)^\s*location (=|~) "?([^"\s]+)"? \{`)
	verbs := regexp.MustCompile(`\$request_method !~ \^\(([A-Z|]+)\)\$`)
	blocks := location.FindAllStringSubmatchIndex(string(conf), -1)
	proxied := 0
	for i, b := range blocks {
		end := len(conf)
		if i+1 < len(blocks) {
			end = blocks[i+1][0]
		}
		body := string(conf[b[1]:end])
		kind, pattern := string(conf[b[2]:b[3]]), string(conf[b[4]:b[5]])
		if !strings.Contains(body, "proxy_pass") {
			continue
		}
		proxied++
		m := verbs.FindStringSubmatch(body)
		if m == nil {
			t.Errorf("location %s passes every verb", pattern)
			continue
		}
		allowed := slices.DeleteFunc(strings.Split(m[1], "|"), func(v string) bool { return v == "HEAD" })
		var route string
		for path := range served {
			sample := strings.ReplaceAll(path, ":node_ident", "3f2a7c1e-0d4b-4c8e-9a61-5b7d2e8f0c13")
			if (kind == "=" && pattern == path) || (kind == "~" && regexp.MustCompile(pattern).MatchString(sample)) {
				route = path
			}
		}
		if route == "" {
			t.Errorf("location %s passes a path the agent API does not serve", pattern)
			continue
		}
		slices.Sort(allowed)
		want := slices.Sorted(slices.Values(served[route]))
		if !slices.Equal(allowed, want) {
			t.Errorf("location %s passes %v, the route serves %v", pattern, allowed, want)
		}
		delete(served, route)
	}
	for path := range served {
		t.Errorf("route %s is not passed by the nginx snippet", path)
	}
	if proxied != 5 {
		t.Errorf("%d proxied locations, want the protocol's 5 paths", proxied)
	}
}
