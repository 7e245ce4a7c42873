package sessionaffinity

import (
	"math"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
)

// Placeholders set when the `placeholders` option is on.
const (
	placeholderSource  = "http.reverse_proxy.session_affinity.source"
	placeholderKeyHash = "http.reverse_proxy.session_affinity.key_hash"

	// Caddy sets this before every attempt (reverseproxy.go,
	// proxyLoopIteration): at Select time it names the upstream of this
	// request's previous, failed attempt.
	placeholderPrevUpstream = "http.reverse_proxy.upstream.hostport"
)

// Select returns the available upstream with the highest rendezvous score
// for the request's key; on a retry, the best one scoring strictly below the
// upstream that just failed, so no upstream is tried twice.
func (s *SessionAffinitySelection) Select(pool reverseproxy.UpstreamPool, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	key, label, bounded := s.extractKey(r)
	if label == nil {
		if s.Placeholders {
			if repl := replacerOf(r); repl != nil {
				repl.Set(placeholderSource, s.fallbackLabel)
			}
		}
		return s.fallback.Select(pool, r, w)
	}

	// Caddy's proxy loop works on a clone of the request whose URL host it
	// empties (cloneRequest) and sets to the upstream's address when it
	// sends an attempt (directRequest). An empty host therefore means this
	// is the first attempt, and the replacer lookup of the previous
	// upstream (about 45 ns, with the context lookup of the replacer 60 ns
	// of the 200 this method took with it) is only needed on retries.
	//
	// On a retry through the minio transport, its trace of this request
	// says which nodes were tried and why they failed: every node that
	// failed is skipped, and a node that refused because it was going away
	// may serve the request once it is back (a whole-cluster restart);
	// with no node left, one it timed out on is taken again (mayRevisit).
	// Without the trace, the retry continues strictly below the score of
	// the upstream that just failed, which skips every node tried before.
	var prev string
	var tr *proxytrace.Trace
	if r.URL != nil && r.URL.Host != "" {
		if tr = proxytrace.From(r); tr == nil {
			if repl := replacerOf(r); repl != nil {
				prev, _ = repl.GetString(placeholderPrevUpstream)
			}
		}
	}
	up := s.pick(pool, key, prev, tr, bounded)

	if s.Placeholders || s.responseHeader != "" {
		s.report(r, w, label, key)
	}
	return up
}

// replacerOf returns the request's replacer, or nil outside Caddy's HTTP
// server.
func replacerOf(r *http.Request) *caddy.Replacer {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	return repl
}

// extract hashes the key of the first source that yields one; label is the
// source's boxed label, or nil when no source yields a key.
func (s *SessionAffinitySelection) extract(r *http.Request) (key uint64, label any) {
	key, label, _ = s.extractKey(r)
	return key, label
}

// extractKey is extract plus the bounded-load factor of the source that
// gave the key (0: off).
func (s *SessionAffinitySelection) extractKey(r *http.Request) (key uint64, label any, bounded float64) {
	var h keyHasher
	h.reset(s.hashSeed)
	for i := range s.sources {
		if idx, ok := s.sources[i].hash(r, &h); ok {
			return h.sum(), s.sources[i].labels[idx], s.sources[i].boundedLoad
		}
	}
	return 0, nil, 0
}

// pick walks the key's rendezvous order: the first available upstream below
// the previous attempt's score (if any) and under the bounded-load capacity
// (if bounded > 0). If every remaining upstream is at capacity, capacity is
// ignored rather than failing the request.
func (s *SessionAffinitySelection) pick(pool reverseproxy.UpstreamPool, key uint64, prev string, tr *proxytrace.Trace, bounded float64) *reverseproxy.Upstream {
	capacity := 0
	if bounded > 0 {
		capacity = s.capacity(pool, bounded)
	}
	if s.weights == nil {
		limit, hasLimit := uint64(0), prev != ""
		if hasLimit {
			limit = score(key, addrHash(canonAddr(prev)))
		}
		up := s.pickPlain(pool, key, limit, hasLimit, capacity, tr, false)
		if up == nil && capacity > 0 {
			up = s.pickPlain(pool, key, limit, hasLimit, 0, tr, false)
		}
		if up == nil && mayRevisit(tr) {
			up = s.pickPlain(pool, key, limit, hasLimit, 0, tr, true)
		}
		return up
	}
	limit, hasLimit := 0.0, prev != ""
	if hasLimit {
		limit = weightedScore(score(key, addrHash(canonAddr(prev))), s.weight(prev))
	}
	up := s.pickWeighted(pool, key, limit, hasLimit, capacity, tr, false)
	if up == nil && capacity > 0 {
		up = s.pickWeighted(pool, key, limit, hasLimit, 0, tr, false)
	}
	if up == nil && mayRevisit(tr) {
		up = s.pickWeighted(pool, key, limit, hasLimit, 0, tr, true)
	}
	return up
}

// mayRevisit reports whether a retry that found no node left to try may go
// back to a node where an attempt of this request timed out. On MinIO a
// try_timeout is as often the whole cluster stalling on a frozen node's
// drive and locks as one node: with every other node tried or out of the
// pool, the request goes back to the best of those nodes, and the
// transport lets that attempt wait without a try deadline (a request is
// abandoned at most once). Without it Caddy's retries found no upstream at
// once and the client got the 504 of the timed-out attempt (seen in
// TestSlowNodes: a hedged pair timed out while a SIGSTOPped node stalled
// its peers, and the only other node was ejected).
func mayRevisit(tr *proxytrace.Trace) bool {
	return tr != nil && tr.TimedOutOnce()
}

// skip reports whether a retry may not go to node: the trace says the
// request failed there, unless revisit allows a node it timed out on.
func skip(tr *proxytrace.Trace, node string, revisit bool) bool {
	if tr == nil || tr.MayRetryOn(node) {
		return false
	}
	return !revisit || tr.LastFailure(node) != proxytrace.TimedOut
}

func (s *SessionAffinitySelection) pickPlain(pool reverseproxy.UpstreamPool, key, limit uint64, hasLimit bool, capacity int, tr *proxytrace.Trace, revisit bool) *reverseproxy.Upstream {
	var best *reverseproxy.Upstream
	var bestScore uint64
	for _, up := range pool {
		if !up.Available() || skip(tr, canonAddr(up.Dial), revisit) {
			continue
		}
		ah, _ := s.addrs.lookup(up.Dial, s.weights)
		sc := score(key, ah)
		if (hasLimit && sc >= limit) || (best != nil && sc <= bestScore) {
			continue
		}
		if capacity > 0 && s.load(up) >= capacity {
			continue
		}
		best, bestScore = up, sc
	}
	return best
}

func (s *SessionAffinitySelection) pickWeighted(pool reverseproxy.UpstreamPool, key uint64, limit float64, hasLimit bool, capacity int, tr *proxytrace.Trace, revisit bool) *reverseproxy.Upstream {
	var best *reverseproxy.Upstream
	bestScore := math.Inf(-1)
	for _, up := range pool {
		if !up.Available() || skip(tr, canonAddr(up.Dial), revisit) {
			continue
		}
		ah, w := s.addrs.lookup(up.Dial, s.weights)
		sc := weightedScore(score(key, ah), w)
		if (hasLimit && sc >= limit) || (best != nil && sc <= bestScore) {
			continue
		}
		if capacity > 0 && s.load(up) >= capacity {
			continue
		}
		best, bestScore = up, sc
	}
	return best
}

func (s *SessionAffinitySelection) weight(dial string) float64 {
	if w, ok := s.weights[canonAddr(dial)]; ok {
		return w
	}
	return 1
}

// minCapacity is the lowest bounded-load ceiling. Caddy counts a request in
// flight until its handler returns, a moment after the client has the whole
// answer, so a client sending one request at a time can find its previous
// request still counted on the object's node; with a ceiling of 1 its next
// request on the same object would move to another node (seen in the
// end-to-end suite with a core burned). Below 2 requests in flight per node
// there is no load to spread anyway.
const minCapacity = 2

// capacity is the bounded-load ceiling: ceil(factor * (in flight + 1) / n)
// over the available upstreams, at least minCapacity.
func (s *SessionAffinitySelection) capacity(pool reverseproxy.UpstreamPool, factor float64) int {
	total, n := 0, 0
	for _, up := range pool {
		if up.Available() {
			total += s.load(up)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return max(minCapacity, int(math.Ceil(factor*float64(total+1)/float64(n))))
}

func (s *SessionAffinitySelection) load(up *reverseproxy.Upstream) int {
	if s.numRequests != nil {
		return s.numRequests(up)
	}
	if up.Host == nil {
		return 0
	}
	return up.NumRequests()
}

// report sets the placeholders and the response header; formatting the key
// hash allocates, which is why both are off by default. The replacer is
// looked up only for the placeholders.
func (s *SessionAffinitySelection) report(r *http.Request, w http.ResponseWriter, label any, key uint64) {
	hex := keyHashHex(key)
	if s.Placeholders {
		if repl := replacerOf(r); repl != nil {
			repl.Set(placeholderSource, label)
			repl.Set(placeholderKeyHash, hex)
		}
	}
	if s.responseHeader != "" && w != nil {
		w.Header()[s.responseHeader] = []string{hex}
	}
}

func keyHashHex(key uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[key&0xf]
		key >>= 4
	}
	return string(b[:])
}
