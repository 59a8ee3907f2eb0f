package token_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ferric-metal/ferric/shared/token"
)

func keys(t *testing.T, text string) *token.Keys {
	t.Helper()
	k, err := token.ParseKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRotation(t *testing.T) {
	now := time.Now()
	oldKey, newKey := token.NewKeyLine("old"), token.NewKeyLine("new")
	before := keys(t, oldKey)
	during := keys(t, newKey+"\n# the old key verifies until its tokens expire\n"+oldKey)
	after := keys(t, newKey)

	oldTok, err := before.Mint(token.Claims{Role: "admin"}, "iss", token.AudiencePublic, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	newTok, err := during.Mint(token.Claims{Role: "admin"}, "iss", token.AudiencePublic, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := during.Verify(oldTok, "iss", token.AudiencePublic, now); err != nil {
		t.Errorf("old token refused during rotation: %v", err)
	}
	if _, err := after.Verify(newTok, "iss", token.AudiencePublic, now); err != nil {
		t.Errorf("new token refused after rotation: %v", err)
	}
	if _, err := after.Verify(oldTok, "iss", token.AudiencePublic, now); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("old token accepted after its key was removed: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Now()
	k := keys(t, token.NewKeyLine("k"))
	other := keys(t, token.NewKeyLine("k")) // same kid, different secret
	good, _ := k.Mint(token.Claims{Role: "reader"}, "iss", token.AudiencePublic, time.Hour, now)
	for name, tc := range map[string]struct {
		tok, iss, aud string
		at            time.Time
	}{
		"wrong issuer":          {good, "other", token.AudiencePublic, now},
		"wrong audience":        {good, "iss", token.AudienceAgent, now},
		"expired beyond leeway": {good, "iss", token.AudiencePublic, now.Add(time.Hour + token.Leeway + time.Second)},
		"forged with other key": {mint(t, other, now), "iss", token.AudiencePublic, now},
		"alg none":              {"eyJhbGciOiJub25lIiwia2lkIjoiayJ9.eyJpc3MiOiJpc3MiLCJhdWQiOlsicHVibGljIl0sImV4cCI6NDEwMjQ0NDgwMH0.", "iss", token.AudiencePublic, now},
		"tampered payload":      {tamper(good), "iss", token.AudiencePublic, now},
		"not a token":           {"abc", "iss", token.AudiencePublic, now},
	} {
		if _, err := k.Verify(tc.tok, tc.iss, tc.aud, tc.at); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	if _, err := k.Verify(good, "iss", token.AudiencePublic, now.Add(time.Hour+token.Leeway/2)); err != nil {
		t.Errorf("token within the leeway refused: %v", err)
	}
}

func mint(t *testing.T, k *token.Keys, now time.Time) string {
	tok, err := k.Mint(token.Claims{Role: "admin"}, "iss", token.AudiencePublic, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	return strings.Join(parts, ".")
}

func TestParseKeysErrors(t *testing.T) {
	for _, bad := range []string{"", "# only a comment", "k", "k c2hvcnQ=", "k1 " + strings.Repeat("A", 44) + "\nk1 " + strings.Repeat("B", 44), "k !!!notbase64!!!"} {
		if _, err := token.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "AAAA") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

// TestVerifyRequiresExpiry: a well-signed token without exp is refused, so
// that no token lives forever.
func TestVerifyRequiresExpiry(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	k := keys(t, "k "+base64.RawURLEncoding.EncodeToString(secret))
	now := time.Now()
	claims := jwt.MapClaims{"iss": "iss", "aud": []string{token.AudiencePublic}, "iat": now.Unix(), "role": "admin"}
	unsigned := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	unsigned.Header["kid"] = "k"
	noExp, err := unsigned.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(noExp, "iss", token.AudiencePublic, now); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("token without exp: %v, want refused", err)
	}
	claims["exp"] = now.Add(time.Hour).Unix() // the same token with exp passes: the test checks exp alone
	withExp := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	withExp.Header["kid"] = "k"
	good, _ := withExp.SignedString(secret)
	if _, err := k.Verify(good, "iss", token.AudiencePublic, now); err != nil {
		t.Fatalf("the same token with exp: %v", err)
	}
}

func TestValidRole(t *testing.T) {
	for _, r := range token.Roles {
		if !token.ValidRole(r) {
			t.Errorf("ValidRole(%q) = false", r)
		}
	}
	for _, r := range []string{"", "Admin", "root", "operator"} {
		if token.ValidRole(r) {
			t.Errorf("ValidRole(%q) = true", r)
		}
	}
}
