// Package redact masks secrets in JSON objects before they leave the service,
// by key name and at any depth, as Ironic does with oslo.utils.
package redact

import "strings"

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

func maskValue(v any) any {
	switch t := v.(type) {
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
