package sessionaffinity

import (
	"math/bits"
	"sync/atomic"
)

// addrCacheSlots bounds the cache: far more upstreams than any pool has.
const addrCacheSlots = 1024

// addrCache remembers the hash (and weight) of each upstream address, so
// scoring an upstream costs a table probe and a string compare instead of
// hashing its address on every request. It is keyed on the address text,
// not the *Upstream, because dynamic upstream sources may hand out new
// Upstream values per request. Slots are filled once and never evicted;
// when a probe sequence is full the hash is simply computed, so a churning
// set of addresses degrades to the uncached cost, never to wrong results.
type addrCache struct {
	slots [addrCacheSlots]atomic.Pointer[addrEntry]
}

type addrEntry struct {
	dial   string
	hash   uint64
	weight float64
}

const addrCacheProbes = 4

// lookup returns the address hash and weight of dial.
func (c *addrCache) lookup(dial string, weights map[string]float64) (uint64, float64) {
	i := slotOf(dial)
	for p := uint64(0); p < addrCacheProbes; p++ {
		slot := &c.slots[(i+p)%addrCacheSlots]
		e := slot.Load()
		if e == nil {
			e = newAddrEntry(dial, weights)
			slot.CompareAndSwap(nil, e) // losing a race is harmless
			return e.hash, e.weight
		}
		if e.dial == dial {
			return e.hash, e.weight
		}
	}
	e := newAddrEntry(dial, weights)
	return e.hash, e.weight
}

func newAddrEntry(dial string, weights map[string]float64) *addrEntry {
	canon := canonAddr(dial)
	w, ok := weights[canon]
	if !ok {
		w = 1
	}
	return &addrEntry{dial: dial, hash: addrHash(canon), weight: w}
}

// slotOf picks a cache slot from the address's length and its first and
// last eight bytes (where host names, last octets and ports differ); a
// collision only costs a probe.
func slotOf(s string) uint64 {
	n := len(s)
	x := uint64(n)
	if n >= 8 {
		x ^= load64(s) ^ bits.RotateLeft64(load64(s[n-8:]), 29)
	} else {
		for i := 0; i < n; i++ {
			x = x<<8 | uint64(s[i])
		}
	}
	return (x * 0x9e3779b97f4a7c15) >> 54 // top 10 bits: 0..1023
}

func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
