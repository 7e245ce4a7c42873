package sessionaffinity

import (
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// keyHasher streams the key into a seeded xxhash digest that lives on the
// caller's stack, so extracting and hashing a key never allocates.
type keyHasher struct {
	d xxhash.Digest
	n uint64 // bytes written, for component separators
}

func (h *keyHasher) reset(seed uint64) {
	h.d.ResetWithSeed(seed)
	h.n = 0
}

func (h *keyHasher) writeString(s string) {
	_, _ = h.d.WriteString(s)
	h.n += uint64(len(s))
}

func (h *keyHasher) write(b []byte) {
	_, _ = h.d.Write(b)
	h.n += uint64(len(b))
}

func (h *keyHasher) writeByte(c byte) {
	b := [1]byte{c}
	h.write(b[:])
}

// endComponent closes one fingerprint component by writing its length after
// it. Read from the end, the fixed-width lengths split the stream again, so
// ("ab","c") and ("a","bc") hash differently.
func (h *keyHasher) endComponent(start uint64) {
	l := h.n - start
	var b [8]byte
	for i := range b {
		b[i] = byte(l >> (8 * i))
	}
	_, _ = h.d.Write(b[:])
	h.n += 8
}

func (h *keyHasher) sum() uint64 { return h.d.Sum64() }

// mix is the splitmix64 finaliser: a bijection that spreads every input bit
// over the whole output, so combining the key hash and an address hash with
// a plain xor still gives independent, uniform scores per upstream.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// addrHash hashes an upstream's address in the form Caddy reports it in
// {http.reverse_proxy.upstream.hostport}, so the upstream of a failed
// attempt can be scored from that placeholder alone.
// The caller passes the address already canonicalised (canonAddr).
func addrHash(canon string) uint64 {
	return xxhash.Sum64String(canon)
}

// canonAddr strips a network prefix ("tcp/", "unix/") from a dial address:
// Caddy's dial info Address, which it puts in the hostport placeholder, has
// none. Host and port are kept as written.
func canonAddr(dial string) string {
	i := strings.IndexByte(dial, '/')
	if i <= 0 {
		return dial
	}
	for j := 0; j < i; j++ {
		c := dial[j]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return dial
		}
	}
	return dial[i+1:]
}

// score is an upstream's rendezvous score for a key: higher wins.
func score(key, addr uint64) uint64 { return mix(key ^ addr) }

// weightedScore is the weighted rendezvous score -w/ln(u), u in (0,1) taken
// from the unweighted score: an upstream of weight w wins a share w/sum(w)
// of the keys, and removing one upstream still moves only its own keys.
func weightedScore(s uint64, w float64) float64 {
	u := (float64(s>>11) + 0.5) / (1 << 53)
	return -w / math.Log(u)
}
