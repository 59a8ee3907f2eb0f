// Package redact masks secrets in JSON objects before they leave the service,
// by key name and at any depth, and inside strings that carry key=value
// pairs, as Ironic does with oslo.utils.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces every secret value.
const Mask = "******"

// secretKeyParts mark a key as secret when its lower-cased name contains
// one of them (oslo.utils' list, which Ironic uses).
var secretKeyParts = []string{
	"password", "secret", "token", "passphrase", "private_key", "configdrive",
	"auth_key", "priv_key", "credential", "encryption_key", "fernetkey", "sslkey",
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// Secrets returns a copy of m in which the value of every secret key,
// at any depth, is replaced by "******". The stored object is untouched.
func Secrets(m map[string]any, extraKeys ...string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		secret := isSecretKey(k)
		for _, e := range extraKeys {
			secret = secret || k == e
		}
		if secret && v != nil {
			out[k] = Mask
			continue
		}
		out[k] = maskValue(v)
	}
	return out
}

// Secrets written inside strings, as oslo.utils' mask_password finds them:
// key=value, key: value, "key": "value" (a quoted value to its closing
// quote), <key>value</key>, and the password of a URL's user information.
// A key names a secret when it ends with one of secretKeyParts and starts
// a word (so "token_ttl: 3600" and "https://secret-bmc:8443" are left be).
var (
	inlineKeyValue = regexp.MustCompile(`(?i)(^|[^\w.-])(\w*(?:` + secretKeyAlternatives() + `))(["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"'&,;<]+)`)
	inlineXML      = regexp.MustCompile(`(?i)(<\w*(?:` + secretKeyAlternatives() + `)>)[^<]*(</)`)
	urlPassword    = regexp.MustCompile(`(://[^:/@\s]+:)[^@\s/]+(@)`)
)

func secretKeyAlternatives() string {
	parts := make([]string, len(secretKeyParts))
	for i, p := range secretKeyParts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, "|")
}

// String masks the secrets written inside s (password=..., "token": "...",
// <password>...</password>, https://user:...@host).
func String(s string) string {
	if !strings.ContainsAny(s, "=:>") {
		return s
	}
	s = inlineKeyValue.ReplaceAllStringFunc(s, func(m string) string {
		g := inlineKeyValue.FindStringSubmatch(m)
		value := Mask
		if q := g[4][0]; q == '"' || q == '\'' {
			value = string(q) + Mask + string(q)
		}
		return g[1] + g[2] + g[3] + value
	})
	s = inlineXML.ReplaceAllString(s, "${1}"+Mask+"${2}")
	return urlPassword.ReplaceAllString(s, "${1}"+Mask+"${2}")
}

func maskValue(v any) any {
	switch t := v.(type) {
	case string:
		return String(t)
	case map[string]any:
		return Secrets(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = maskValue(e)
		}
		return out
	}
	return v
}
