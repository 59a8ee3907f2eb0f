package publicapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/shared/token"
)

// TestInvalidTextRefused: invalid UTF-8 and lone surrogates in a body are a
// 400, through the versioned and the unversioned paths, and nothing is
// written (they used to be stored as U+FFFD).
func TestInvalidTextRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tok := mintToken(t, testKeys, "admin", token.AudiencePublic, time.Hour)
	for _, tc := range []struct{ name, path, body string }{
		{"invalid UTF-8", "/v1/nodes", "{\"driver\": \"fake\", \"name\": \"bad-\xff\"}"},
		{"lone surrogate", "/v1/nodes", `{"driver": "fake", "name": "bad-\ud800"}`},
		{"unversioned path", "/nodes", "{\"driver\": \"fake\", \"description\": \"\xc3\"}"},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+tc.path, bytes.NewReader([]byte(tc.body)))
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "error_message") {
			t.Errorf("%s: %d %s, want 400 in Ironic's format", tc.name, resp.StatusCode, body)
		}
	}
	if n := countRows(t, s.DB, "nodes"); n != 0 {
		t.Errorf("%d nodes written from refused bodies", n)
	}
}
