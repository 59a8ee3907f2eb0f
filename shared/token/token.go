// Package token mints and verifies Ferric's JWTs: operator tokens (audience
// "public") and agent tokens (audience "agent"). Each audience has its own
// key file so that neither API can accept, or mint, the other's tokens.
//
// Keys are HMAC-SHA256 secrets selected by the token's "kid" header, so a key
// can be rotated: add the new key as the first line (it signs), keep the old
// one below it (it still verifies) until old tokens have expired.
package token

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audiences.
const (
	AudiencePublic = "public"
	AudienceAgent  = "agent"
)

// Leeway tolerates clock skew between the minting and verifying hosts.
const Leeway = 30 * time.Second

const minSecretBytes = 32

// Claims are the claims of a Ferric token.
type Claims struct {
	jwt.RegisteredClaims
	Role       string `json:"role,omitempty"`       // operator tokens: admin, member or reader
	Generation int64  `json:"generation,omitempty"` // agent tokens: the node's token generation
}

// Keys is a set of signing keys; the first one signs.
type Keys struct {
	signingKID string
	secrets    map[string][]byte
}

// ParseKeys reads "kid secret" lines (secret in standard or URL base64, at
// least 32 bytes decoded); blank lines and # comments are skipped.
func ParseKeys(text string) (*Keys, error) {
	k := &Keys{secrets: map[string][]byte{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"kid secret\"", line)
		}
		secret, err := decodeSecret(f[1])
		if err != nil || len(secret) < minSecretBytes {
			return nil, fmt.Errorf("line %d: secret must be base64 of at least %d bytes", line, minSecretBytes)
		}
		if _, dup := k.secrets[f[0]]; dup {
			return nil, fmt.Errorf("line %d: duplicate kid %q", line, f[0])
		}
		if k.signingKID == "" {
			k.signingKID = f[0]
		}
		k.secrets[f[0]] = secret
	}
	if k.signingKID == "" {
		return nil, errors.New("no key found")
	}
	return k, nil
}

// LoadKeys reads a key file; the error never includes the file's content.
func LoadKeys(path string) (*Keys, error) {
	if path == "" {
		return nil, errors.New("no key file configured")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// NewKeyLine returns a fresh "kid secret" line for a key file.
func NewKeyLine(kid string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return kid + " " + base64.RawURLEncoding.EncodeToString(b)
}

func decodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Mint signs claims with the signing key, setting iss, aud, iat and exp.
func (k *Keys) Mint(claims Claims, issuer, audience string, ttl time.Duration, now time.Time) (string, error) {
	claims.Issuer = issuer
	claims.Audience = jwt.ClaimStrings{audience}
	claims.IssuedAt = jwt.NewNumericDate(now)
	claims.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = k.signingKID
	return t.SignedString(k.secrets[k.signingKID])
}

// ErrInvalid is returned for any token that does not verify; the reason is
// wrapped for logs and never shown to the client.
var ErrInvalid = errors.New("invalid token")

// Verify checks the signature (HS256 only, key chosen by kid), issuer,
// audience and expiry (required), and returns the claims.
func (k *Keys) Verify(tok, issuer, audience string, now time.Time) (*Claims, error) {
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		secret, ok := k.secrets[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return secret, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return claims, nil
}
