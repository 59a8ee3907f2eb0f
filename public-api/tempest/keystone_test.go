package tempest_test

import (
	"encoding/json"
	"net/http"
	"time"
)

// keystone stands in for Keystone's v3 token API, the one call tempest makes
// to it here: POST /v3/auth/tokens answers any credentials with a Ferric
// operator token (admin) in X-Subject-Token and a catalog whose baremetal
// endpoint is ferricURL, without /v1, as deployments register Ironic.
func keystone(ferricURL string, mint func() (string, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct {
							Name string `json:"name"`
						} `json:"user"`
					} `json:"password"`
				} `json:"identity"`
				Scope map[string]any `json:"scope"`
			} `json:"auth"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tok, err := mint()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		domain := map[string]any{"id": "default", "name": "Default"}
		user := req.Auth.Identity.Password.User.Name
		body := map[string]any{
			"methods":    []string{"password"},
			"expires_at": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
			"issued_at":  time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
			"user":       map[string]any{"id": user, "name": user, "domain": domain},
			"roles":      []map[string]any{{"id": "admin", "name": "admin"}},
			"catalog": []map[string]any{{
				"type": "baremetal", "name": "ironic", "id": "ironic",
				"endpoints": []map[string]any{{
					"id": "ironic-public", "interface": "public", "region": "RegionOne",
					"region_id": "RegionOne", "url": ferricURL,
				}},
			}},
		}
		if _, system := req.Auth.Scope["system"]; system {
			body["system"] = map[string]any{"all": true}
		} else if p, ok := req.Auth.Scope["project"].(map[string]any); ok {
			name, _ := p["name"].(string)
			body["project"] = map[string]any{"id": name, "name": name, "domain": domain}
		}
		w.Header().Set("X-Subject-Token", tok)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": body})
	})
	return mux
}
