package redfish

import (
	"container/list"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// transportKey identifies a BMC endpoint with its credentials and TLS
// settings. It is a hash so the cache holds no password.
type transportKey [sha256.Size]byte

// transportCache keeps one http.Transport per transportKey, so connections
// to a BMC are reused across operations but never shared between different
// credentials or TLS settings. It is bounded (LRU) and drops entries idle
// longer than ttl; expiry is checked on use, so it needs no goroutine.
type transportCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // of *transportEntry, most recently used first
	byKey map[transportKey]*list.Element
}

type transportEntry struct {
	key      transportKey
	rt       *http.Transport
	lastUsed time.Time
}

func newTransportCache(maxEntries int, ttl time.Duration) *transportCache {
	return &transportCache{max: maxEntries, ttl: ttl, now: time.Now, order: list.New(), byKey: map[transportKey]*list.Element{}}
}

// get returns the transport for cfg, building it on first use.
func (c *transportCache) get(cfg *bmcConfig) (*http.Transport, error) {
	key, err := cfg.transportKey()
	if err != nil {
		return nil, err
	}
	if rt := c.lookup(key); rt != nil {
		return rt, nil
	}
	rt, err := newTransport(cfg) // outside the lock: it may read a CA file
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok { // another caller built one meanwhile
		rt.CloseIdleConnections()
		c.touch(el)
		return el.Value.(*transportEntry).rt, nil
	}
	c.byKey[key] = c.order.PushFront(&transportEntry{key: key, rt: rt, lastUsed: c.now()})
	for c.order.Len() > c.max {
		c.remove(c.order.Back())
	}
	return rt, nil
}

func (c *transportCache) lookup(key transportKey) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire()
	if el, ok := c.byKey[key]; ok {
		c.touch(el)
		return el.Value.(*transportEntry).rt
	}
	return nil
}

func (c *transportCache) touch(el *list.Element) {
	el.Value.(*transportEntry).lastUsed = c.now()
	c.order.MoveToFront(el)
}

// expire drops entries idle longer than the ttl, oldest first. Called with
// c.mu held.
func (c *transportCache) expire() {
	cutoff := c.now().Add(-c.ttl)
	for el := c.order.Back(); el != nil && el.Value.(*transportEntry).lastUsed.Before(cutoff); el = c.order.Back() {
		c.remove(el)
	}
}

// remove drops an entry. Requests still using its transport finish; their
// connections then close after IdleConnTimeout.
func (c *transportCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*transportEntry)
	delete(c.byKey, e.key)
	e.rt.CloseIdleConnections()
}

func (c *transportCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		c.remove(el)
	}
}

func (c *transportCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// transportKey hashes what makes a transport distinct. A CA bundle counts by
// path, size and modification time, so a replaced bundle is picked up.
func (cfg *bmcConfig) transportKey() (transportKey, error) {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s)))) // length prefix: no ambiguity between fields
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	write(cfg.endpoint)
	write(cfg.username)
	write(cfg.password)
	write(strconv.FormatBool(cfg.skipVerify))
	write(cfg.caFile)
	if cfg.caFile != "" {
		st, err := os.Stat(cfg.caFile)
		if err != nil {
			return transportKey{}, fmt.Errorf("driver_info %q: CA bundle: %w", keyVerifyCA, err)
		}
		write(strconv.FormatInt(st.Size(), 10) + "@" + st.ModTime().UTC().Format(time.RFC3339Nano))
	}
	var key transportKey
	h.Sum(key[:0])
	return key, nil
}

// BMCs are slow, fragile and few per conductor: keep few connections each.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 30 * time.Second
	maxConnsPerBMC      = 4
)

// newTransport builds the transport for one BMC. Proxies from the
// environment are ignored: BMC networks are reached directly.
func newTransport(cfg *bmcConfig) (*http.Transport, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.skipVerify} //nolint:gosec // operator's choice via redfish_verify_ca
	if cfg.caFile != "" {
		pem, err := os.ReadFile(cfg.caFile)
		if err != nil {
			return nil, fmt.Errorf("driver_info %q: CA bundle: %w", keyVerifyCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("driver_info %q: CA bundle %s holds no PEM certificate", keyVerifyCA, cfg.caFile)
		}
		tlsConfig.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		MaxIdleConns:          maxConnsPerBMC,
		MaxIdleConnsPerHost:   maxConnsPerBMC,
		MaxConnsPerHost:       maxConnsPerBMC,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
	}, nil
}
