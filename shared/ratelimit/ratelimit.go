// Package ratelimit limits requests per client address with token buckets
// (golang.org/x/time/rate), in bounded memory and without a background
// goroutine: idle buckets are dropped lazily, by the calls themselves.
//
// A bucket left unused for burst/rate seconds has refilled completely, so
// dropping it and starting a new one later changes nothing for its client:
// eviction is lossless. When more than MaxKeys clients are active at once,
// the newcomers share one overflow bucket, so an attacker spraying source
// addresses can neither exhaust memory nor escape the limit.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token buckets keyed by client. Safe for concurrent use.
type Limiter struct {
	perSecond rate.Limit
	burst     int
	maxKeys   int
	idle      time.Duration // a bucket unused this long is full again

	mu        sync.Mutex
	buckets   map[netip.Prefix]*bucket
	overflow  *rate.Limiter
	nextSweep time.Time
}

type bucket struct {
	limiter  *rate.Limiter
	lastUsed time.Time
}

// New returns a limiter allowing perSecond requests per client with bursts
// of burst, tracking at most maxKeys clients individually.
func New(perSecond float64, burst, maxKeys int) *Limiter {
	idle := time.Duration(math.Ceil(float64(burst)/perSecond*float64(time.Second))) + time.Second
	return &Limiter{
		perSecond: rate.Limit(perSecond),
		burst:     burst,
		maxKeys:   maxKeys,
		idle:      idle,
		buckets:   map[netip.Prefix]*bucket{},
		overflow:  rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

// ClientKey is the bucket of an address: the address itself for IPv4, its
// /64 for IPv6, since one host can use every address of its /64.
func ClientKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	if addr.Is4() {
		return netip.PrefixFrom(addr, 32)
	}
	p, _ := addr.Prefix(64)
	return p
}

// Allow takes a token from key's bucket at now. When none is left it
// returns false and how long until one will be.
func (l *Limiter) Allow(key netip.Prefix, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.nextSweep) || len(l.buckets) >= l.maxKeys {
		l.sweep(now)
	}
	lim := l.overflow
	if b, ok := l.buckets[key]; ok {
		b.lastUsed, lim = now, b.limiter
	} else if len(l.buckets) < l.maxKeys {
		b := &bucket{limiter: rate.NewLimiter(l.perSecond, l.burst), lastUsed: now}
		l.buckets[key] = b
		lim = b.limiter
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now) // not taking it: give the token back
		return false, wait
	}
	return true, 0
}

// sweep drops the buckets idle long enough to be full again.
func (l *Limiter) sweep(now time.Time) {
	for key, b := range l.buckets {
		if now.Sub(b.lastUsed) >= l.idle {
			delete(l.buckets, key)
		}
	}
	l.nextSweep = now.Add(l.idle)
}

// Len reports how many clients have their own bucket.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
