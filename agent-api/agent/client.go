package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
)

// maxAnswer bounds what the agent reads of an answer: the agent API's are
// small.
const maxAnswer = 1 << 20

// Client calls the agent API's native form.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

// NewHTTPClient returns the HTTP client the agent uses for the agent API and
// image downloads: TLS verified against the system's CAs plus caFile's,
// deadlines on connecting, the TLS handshake and the answer's headers (a
// download's body is bounded by imagewrite's stall timeout instead).
func NewHTTPClient(caFile string, maxConnsPerHost int) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		tlsConfig.RootCAs = pool
	}
	if maxConnsPerHost <= 0 {
		maxConnsPerHost = 4
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          maxConnsPerHost * 2,
		MaxIdleConnsPerHost:   maxConnsPerHost,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: transport}, nil
}

// NewClient returns a client of the agent API at base.
func NewClient(base string, hc *http.Client, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc, timeout: timeout}
}

// APIError is an answer other than success. Status is 0 for a failure to
// get an answer at all.
type APIError struct {
	Status     int
	Message    string        // the agent API's faultstring, when it sent one
	RetryAfter time.Duration // from Retry-After, when sent
	Err        error         // the transport's error, when Status is 0
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("agent API unreachable: %v", e.Err)
	}
	if e.Message != "" {
		return fmt.Sprintf("agent API answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("agent API answered %d", e.Status)
}

func (e *APIError) Unwrap() error { return e.Err }

// statusOf is the HTTP status of a failed call, 0 when there was no answer.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// retryAfterOf is the Retry-After a failed call's answer asked for.
func retryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// Lookup sends the machine's inventory and returns its node and token.
func (c *Client) Lookup(ctx context.Context, inv *agentwire.Inventory) (*agentwire.LookupResponse, error) {
	var out agentwire.LookupResponse
	if err := c.post(ctx, agentwire.LookupPath, "", inv, &out); err != nil {
		return nil, err
	}
	if out.NodeUUID == "" || out.Token == "" {
		return nil, &APIError{Status: http.StatusOK, Message: "lookup answer without node_uuid or token"}
	}
	return &out, nil
}

// Checkin reports the agent's state and returns what to do next.
func (c *Client) Checkin(ctx context.Context, token string, req *agentwire.CheckinRequest) (*agentwire.CheckinResponse, error) {
	var out agentwire.CheckinResponse
	if err := c.post(ctx, agentwire.CheckinPath, token, req, &out); err != nil {
		return nil, err
	}
	if out.Action == "" {
		return nil, &APIError{Status: http.StatusOK, Message: "checkin answer without an action"}
	}
	return &out, nil
}

func (c *Client) post(ctx context.Context, path, token string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &APIError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &APIError{Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &APIError{Status: resp.StatusCode, Message: faultString(data), RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &APIError{Status: resp.StatusCode, Message: "malformed answer: " + err.Error()}
	}
	return nil
}

// faultString extracts the message of an error in Ironic's format:
// {"error_message": "{\"faultstring\": ...}"}.
func faultString(body []byte) string {
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	if json.Unmarshal(body, &outer) != nil || outer.ErrorMessage == "" {
		return ""
	}
	var inner struct {
		Faultstring string `json:"faultstring"`
	}
	if json.Unmarshal([]byte(outer.ErrorMessage), &inner) != nil {
		return truncate(outer.ErrorMessage, 200)
	}
	return truncate(inner.Faultstring, 200)
}

func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, 10*time.Minute)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t), 0), 10*time.Minute)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
