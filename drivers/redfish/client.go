package redfish

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stmcginnis/gofish/schemas"
)

// defaultMaxResponseBytes bounds what the driver reads from a BMC: enough
// for a large BIOS attribute set, too little to exhaust memory.
const defaultMaxResponseBytes = 8 << 20

// maxRedirects bounds redirects, which some BMCs use between system ids.
const maxRedirects = 5

var errResponseTooLarge = errors.New("the BMC's answer is too large")

// bmcClient is gofish's schemas.Client for one operation on one BMC: every
// request runs under ctx on the cached transport, with Basic credentials
// or a session token. It is not shared between operations.
type bmcClient struct {
	ctx      context.Context
	endpoint string
	http     *http.Client
	username string
	password string
	basic    bool   // send HTTP Basic credentials
	token    string // X-Auth-Token once logged in
	maxBody  int64  // bytes read at most from a successful answer
}

var _ schemas.Client = (*bmcClient)(nil)

func newClient(ctx context.Context, cfg *bmcConfig, rt http.RoundTripper, maxBody int64) *bmcClient {
	return &bmcClient{
		maxBody:  maxBody,
		ctx:      ctx,
		endpoint: cfg.endpoint,
		http:     &http.Client{Transport: rt, CheckRedirect: sameEndpointRedirects},
		username: cfg.username,
		password: cfg.password,
		basic:    !cfg.session && cfg.username != "",
	}
}

// withContext returns a copy of c that runs its requests under ctx.
func (c *bmcClient) withContext(ctx context.Context) *bmcClient {
	cc := *c
	cc.ctx = ctx
	return &cc
}

// sameEndpointRedirects follows redirects on the same host only: a session
// token in a custom header would otherwise be sent elsewhere.
func sameEndpointRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("refusing redirect to another endpoint %s://%s", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// GetSettings implements schemas.Client.
func (c *bmcClient) GetSettings() schemas.ClientSettings { return schemas.ClientSettings{} }

// Get implements schemas.Client.
func (c *bmcClient) Get(url string) (*http.Response, error) {
	return c.do(http.MethodGet, url, nil, nil)
}

// GetWithHeaders implements schemas.Client.
func (c *bmcClient) GetWithHeaders(url string, headers map[string]string) (*http.Response, error) {
	return c.do(http.MethodGet, url, nil, headers)
}

// Post implements schemas.Client.
func (c *bmcClient) Post(url string, payload any) (*http.Response, error) {
	return c.do(http.MethodPost, url, payload, nil)
}

// PostWithHeaders implements schemas.Client.
func (c *bmcClient) PostWithHeaders(url string, payload any, headers map[string]string) (*http.Response, error) {
	return c.do(http.MethodPost, url, payload, headers)
}

// PostMultipart implements schemas.Client; the driver uploads nothing.
func (c *bmcClient) PostMultipart(string, map[string]io.Reader) (*http.Response, error) {
	return nil, errors.New("multipart upload is not used by the redfish driver")
}

// PostMultipartWithHeaders implements schemas.Client; see PostMultipart.
func (c *bmcClient) PostMultipartWithHeaders(url string, payload map[string]io.Reader, _ map[string]string) (*http.Response, error) {
	return c.PostMultipart(url, payload)
}

// Patch implements schemas.Client.
func (c *bmcClient) Patch(url string, payload any) (*http.Response, error) {
	return c.do(http.MethodPatch, url, payload, nil)
}

// PatchWithHeaders implements schemas.Client.
func (c *bmcClient) PatchWithHeaders(url string, payload any, headers map[string]string) (*http.Response, error) {
	return c.do(http.MethodPatch, url, payload, headers)
}

// Put implements schemas.Client.
func (c *bmcClient) Put(url string, payload any) (*http.Response, error) {
	return c.do(http.MethodPut, url, payload, nil)
}

// PutWithHeaders implements schemas.Client.
func (c *bmcClient) PutWithHeaders(url string, payload any, headers map[string]string) (*http.Response, error) {
	return c.do(http.MethodPut, url, payload, headers)
}

// Delete implements schemas.Client.
func (c *bmcClient) Delete(url string) (*http.Response, error) {
	return c.DeleteWithHeaders(url, nil)
}

// DeleteWithHeaders implements schemas.Client. Like gofish's own client it
// returns the response with its body already consumed.
func (c *bmcClient) DeleteWithHeaders(url string, headers map[string]string) (*http.Response, error) {
	resp, err := c.do(http.MethodDelete, url, nil, headers)
	if err != nil {
		return nil, err
	}
	return resp, schemas.CleanupHTTPResponse(resp)
}

// do sends one request. A status outside 2xx is a *statusError; the body of
// a successful answer is capped at c.maxBody.
func (c *bmcClient) do(method, target string, payload any, headers map[string]string) (*http.Response, error) {
	path, err := c.resolve(target)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	var body io.Reader
	if payload != nil {
		buf, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.endpoint+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	req.Header.Set("User-Agent", "ferric-redfish")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if k != "" {
			req.Header.Set(k, v)
		}
	}
	switch {
	case c.token != "":
		req.Header.Set("X-Auth-Token", c.token)
	case c.basic:
		req.SetBasicAuth(c.username, c.password)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err // *url.Error: method, URL (no credentials) and cause
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer schemas.DeferredCleanupHTTPResponse(resp)
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		// A BMC may echo what it was sent, a login's password included.
		raw = []byte(redactString(string(raw), c.secrets()))
		return nil, newStatusError(method, path, resp.StatusCode, raw)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: c.maxBody}
	return resp, nil
}

// secrets lists the credentials this client sends.
func (c *bmcClient) secrets() []string {
	var out []string
	if c.password != "" {
		out = append(out, c.password, base64.StdEncoding.EncodeToString([]byte(c.username+":"+c.password)))
	}
	if c.token != "" {
		out = append(out, c.token)
	}
	return out
}

// resolve turns a link from the BMC into a path on its endpoint. Links are
// normally absolute paths; a full URL is accepted only for the same
// endpoint, so credentials never go elsewhere.
func (c *bmcClient) resolve(target string) (string, error) {
	if target == "" {
		return "", errors.New("the BMC gave no link to follow")
	}
	if strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "//") {
		return target, nil
	}
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() || u.Scheme+"://"+u.Host != c.endpoint {
		return "", errors.New("link leaves the BMC endpoint")
	}
	return u.RequestURI(), nil
}

// cappedBody fails a read past its limit instead of truncating.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		if n, err := b.rc.Read(probe[:]); n > 0 {
			return 0, errResponseTooLarge
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// statusError is a BMC answer outside 2xx. It unwraps to gofish's
// *schemas.Error so gofish's own retries (412 on If-Match) still work.
type statusError struct {
	method, path string
	code         int
	message      string
	redfish      error
}

func newStatusError(method, path string, code int, raw []byte) *statusError {
	return &statusError{method: method, path: path, code: code, message: bmcMessage(raw), redfish: schemas.ConstructError(code, raw)}
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d %s", e.method, e.path, e.code, http.StatusText(e.code))
	if e.code == http.StatusUnauthorized {
		msg += " (check redfish_username and redfish_password)"
	}
	if e.message != "" {
		msg += ": " + e.message
	}
	return msg
}

func (e *statusError) Unwrap() error { return e.redfish }

// bmcMessage extracts the human part of an error body: the Redfish
// extended messages, the general message, or else the start of the text.
func bmcMessage(raw []byte) string {
	var body struct {
		Error struct {
			Message      string `json:"message"`
			ExtendedInfo []struct {
				Message string
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		var parts []string
		for _, m := range body.Error.ExtendedInfo {
			if m.Message != "" {
				parts = append(parts, m.Message)
			}
		}
		if len(parts) == 0 && body.Error.Message != "" {
			parts = append(parts, body.Error.Message)
		}
		if len(parts) > 0 {
			return clip(strings.Join(parts, "; "))
		}
	}
	return clip(string(raw))
}

// clip makes BMC text safe and short for an error message.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	const maxLen = 300
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
