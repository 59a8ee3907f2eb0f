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

// inlineSecret finds a secret written inside a string, as oslo.utils'
// mask_password does: key=value, key: value, "key": "value" and
// <key>value</key>, for keys naming a secret. The value ends at
// whitespace, a quote, & , or ;.
var inlineSecret = regexp.MustCompile(`(?i)(` + secretKeyPattern() + `)(["']?\s*[=:]\s*["']?|>)([^\s"'&,;<]+)`)

func secretKeyPattern() string {
	parts := make([]string, len(secretKeyParts))
	for i, p := range secretKeyParts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return `[\w.-]*(?:` + strings.Join(parts, "|") + `)[\w.-]*`
}

// String masks the secrets written inside s (password=..., "token": "...").
func String(s string) string {
	if !strings.ContainsAny(s, "=:>") {
		return s
	}
	return inlineSecret.ReplaceAllString(s, "${1}${2}"+Mask)
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
