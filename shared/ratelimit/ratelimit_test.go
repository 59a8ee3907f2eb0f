package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/shared/ratelimit"
)

func key(s string) netip.Prefix { return ratelimit.ClientKey(netip.MustParseAddr(s)) }

func TestBurstThenRetryAfter(t *testing.T) {
	l := ratelimit.New(2, 4, 100)
	now := time.Unix(1000, 0)
	for i := 0; i < 4; i++ {
		if ok, _ := l.Allow(key("10.0.0.1"), now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow(key("10.0.0.1"), now)
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("after the burst: ok=%v wait=%v, want refused with a wait of at most 0.5s", ok, wait)
	}
	if ok, _ := l.Allow(key("10.0.0.2"), now); !ok {
		t.Error("another client was refused: buckets are not per client")
	}
	if ok, _ := l.Allow(key("10.0.0.1"), now.Add(wait)); !ok {
		t.Error("refused after waiting the advertised time")
	}
}

func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	if key("2001:db8:1:2::1") != key("2001:db8:1:2:ffff::9") {
		t.Error("two addresses of one /64 have different buckets")
	}
	if key("2001:db8:1:2::1") == key("2001:db8:1:3::1") {
		t.Error("two /64s share a bucket")
	}
	if key("::ffff:10.0.0.1") != key("10.0.0.1") {
		t.Error("an IPv4-mapped address is not its IPv4 address")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	l := ratelimit.New(1, 2, 10)
	now := time.Unix(1000, 0)
	for i := 0; i < 1000; i++ {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		l.Allow(ratelimit.ClientKey(a), now)
	}
	if n := l.Len(); n > 10 {
		t.Fatalf("%d buckets kept, limit 10", n)
	}
	// The sprayed newcomers share the overflow bucket: it is empty now.
	if ok, _ := l.Allow(key("10.9.9.9"), now); ok {
		t.Error("a newcomer beyond the key limit escaped the shared bucket")
	}
	// Idle buckets are full again after burst/rate and are dropped lazily.
	later := now.Add(time.Hour)
	if ok, _ := l.Allow(key("10.9.9.9"), later); !ok {
		t.Error("refused after an hour")
	}
	if n := l.Len(); n != 1 {
		t.Errorf("%d buckets after the idle ones expired, want 1", n)
	}
}
