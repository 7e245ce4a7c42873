package miniotransport

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
)

// dialInfoKey is the context key under which Caddy's reverse_proxy hands the
// upstream's dial address to its HTTP transport (reverseproxy.GetDialInfo
// reads it; the constant itself is unexported). A hedged twin goes to
// another node, so it carries its own. TestDialInfoKeyMatchesCaddy guards
// the value.
const dialInfoKey caddy.CtxKey = "reverse_proxy.dial_info"

// hedgeRace is the state shared by an attempt and its hedged twin.
type hedgeRace struct {
	mu          sync.Mutex
	primaryDone bool // the attempt returned (response or error)
	twinStarted bool
	winner      *leg // the leg whose response goes to the client
	twinResp    *http.Response
	twinErr     error
	twin        *leg
	twinDone    chan struct{} // closed when the twin returned
}

// hedged sends the read to node and, if it has not answered after the
// hedge delay and the budget allows, the same request to the next node of
// its key's order. The first response wins; the other leg is cancelled (its
// connection is closed by Go's transport, never reused half-read).
func (t *Transport) hedged(req *http.Request, tr *proxytrace.Trace, src nodeSource, st *requestState, node string, idx int) (*http.Response, error) {
	t.budget.earn()
	primary := t.newLeg(req, st, node, false, true, true, !tr.TimedOutOnce())
	race := &hedgeRace{twinDone: make(chan struct{})}
	delay := t.hedgeDelayNow()
	timer := time.AfterFunc(delay, func() { t.startTwin(req, tr, src, st, race, primary) })

	resp, err := primary.roundTrip()
	timer.Stop()

	race.mu.Lock()
	race.primaryDone = true
	switch {
	case err == nil && race.winner == nil:
		race.winner = primary
		twin := race.twin
		race.mu.Unlock()
		if twin != nil {
			twin.cancel(errHedgeLost)
		}
		t.observeLatency(node, time.Since(primary.start))
		return t.finish(req, tr, src, primary, idx, resp, nil)
	case err == nil:
		// The twin won at the same moment: its answer is the one used.
		race.mu.Unlock()
		_ = resp.Body.Close()
		primary.cancel(errAttemptDone)
		tr.Fail(idx, proxytrace.Cancelled)
		st.cancelled(primary.rec, 0, 0)
	default:
		started := race.twinStarted
		race.mu.Unlock()
		if !started {
			return t.finish(req, tr, src, primary, idx, nil, err)
		}
		if context.Cause(primary.ctx) != errHedgeWon {
			// The attempt failed on its own: count it, then wait for the
			// twin, which is the request's best chance now.
			_, _ = t.finish(req, tr, src, primary, idx, nil, err)
		} else {
			// Lost to its twin: this node was at least this slow. Evidence
			// for calling it slow, not for judging a node already slow
			// (its reads there are measured unhedged; this wait would
			// understate it and make it look fast).
			if t.hedging {
				t.latencies.observeLost(node, time.Since(primary.start), !t.isSlow(node))
			}
			primary.cancel(errAttemptDone)
			tr.Fail(idx, proxytrace.Cancelled)
			st.cancelled(primary.rec, 0, 0)
		}
	}
	<-race.twinDone
	if race.twinErr != nil {
		return nil, race.twinErr
	}
	return race.twinResp, nil
}

// startTwin runs in the hedge timer's goroutine: it sends the twin unless
// the attempt already returned, the budget is spent or no other node is
// routable, and delivers the twin's result to the race.
func (t *Transport) startTwin(req *http.Request, tr *proxytrace.Trace, src nodeSource, st *requestState, race *hedgeRace, primary *leg) {
	race.mu.Lock()
	if race.primaryDone {
		race.mu.Unlock()
		return
	}
	next := t.nextNode(req, src, func(n string) bool { return !tr.MayRetryOn(n) || tr.Tried(n) })
	if next == "" || !t.budget.take() {
		race.mu.Unlock()
		return
	}
	twinReq := req.Clone(req.Context())
	twinReq.Body, twinReq.ContentLength = http.NoBody, 0
	twinReq.URL.Host = next
	host, port, _ := net.SplitHostPort(next)
	ctx := context.WithValue(twinReq.Context(), dialInfoKey, reverseproxy.DialInfo{Network: "tcp", Address: next, Host: host, Port: port})
	twinReq = twinReq.WithContext(ctx)
	twin := t.newLeg(twinReq, st, next, true, true, true, !tr.TimedOutOnce())
	race.twin, race.twinStarted = twin, true
	race.mu.Unlock()
	// From here on the attempt waits for twinDone: close it whatever
	// happens, a panic included.
	defer func() {
		if r := recover(); r != nil {
			race.mu.Lock()
			race.twinResp, race.twinErr = nil, fmt.Errorf("hedged read to %s failed: %v", next, r)
			race.mu.Unlock()
			recoverPanic(t.logger, "hedge", r)
		}
		close(race.twinDone)
	}()

	idx := tr.Add(next, true)
	resp, err := twin.roundTrip()

	race.mu.Lock()
	defer race.mu.Unlock()
	if err != nil {
		if context.Cause(twin.ctx) == errHedgeLost {
			tr.Fail(idx, proxytrace.Cancelled)
			twin.cancel(errAttemptDone)
			st.cancelled(twin.rec, 0, 0)
			twin.rec.node.Hedge(false)
			race.twinErr = errHedgeLost
			return
		}
		twin.rec.node.Hedge(false)
		race.twinResp, race.twinErr = t.finish(req, tr, src, twin, idx, nil, err)
		return
	}
	if race.winner != nil {
		// The attempt won meanwhile.
		_ = resp.Body.Close()
		tr.Fail(idx, proxytrace.Cancelled)
		twin.cancel(errAttemptDone)
		st.cancelled(twin.rec, 0, 0)
		twin.rec.node.Hedge(false)
		race.twinErr = errHedgeLost
		return
	}
	race.winner = twin
	twin.rec.node.Hedge(true)
	primary.cancel(errHedgeWon)
	t.observeLatency(next, time.Since(twin.start))
	// The access log's upstream is the node that answered; a retry of this
	// request continues after it.
	if repl, ok := req.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.reverse_proxy.upstream.hostport", next)
	}
	race.twinResp, race.twinErr = t.finish(req, tr, src, twin, idx, resp, nil)
}

// hedgeDelayNow is the fixed hedge delay, or the adaptive one.
func (t *Transport) hedgeDelayNow() time.Duration {
	if !t.adaptive {
		return t.hedgeDelay
	}
	return t.latencyView().delay
}

// latencyView is the latency window's current view with this transport's
// settings.
func (t *Transport) latencyView() *latencyView {
	return t.latencies.view(t.HedgeQuantile, time.Duration(t.HedgeMin), time.Duration(t.TryTimeout), t.slowFactor)
}

// observeLatency records the first-byte latency of a read that answered,
// or the time an attempt that lost to its hedged twin had waited (at least
// that slow), for the adaptive delay and the slow nodes.
func (t *Transport) observeLatency(node string, d time.Duration) {
	if t.hedging {
		t.latencies.observe(node, d, t.slowFactor)
	}
}

// tokenBucket caps hedges at a fraction of reads: every read earns rate
// tokens, a hedge spends one, at most burst are saved. Tokens are kept in
// millionths in one atomic word.
type tokenBucket struct {
	rate, burst int64 // millionths
	tokens      atomic.Int64
}

func newTokenBucket(rate float64, burst int) *tokenBucket {
	return &tokenBucket{rate: int64(rate * 1e6), burst: int64(burst) * 1e6}
}

func (b *tokenBucket) earn() {
	for {
		cur := b.tokens.Load()
		next := min(cur+b.rate, b.burst)
		if next == cur || b.tokens.CompareAndSwap(cur, next) {
			return
		}
	}
}

func (b *tokenBucket) take() bool {
	for {
		cur := b.tokens.Load()
		if cur < 1e6 {
			return false
		}
		if b.tokens.CompareAndSwap(cur, cur-1e6) {
			return true
		}
	}
}

// latencyWindow keeps recent first-byte latencies of reads per node, in
// log-scale buckets over two alternating generations of span each. The
// adaptive hedge delay is the median over nodes of each node's quantile:
// one slow node (the reason to hedge at all) cannot drag the delay up to
// its own latency.
type latencyWindow struct {
	span  time.Duration
	nodes sync.Map // node → *nodeLatency

	cacheMu  sync.Mutex
	cachedAt time.Time
	// fresh is the latest view while it is at most 250 ms old: reads take
	// it without cacheMu (every hedged or slow-checked read asks).
	fresh  atomic.Pointer[latencyView]
	cached *latencyView
	// median is the latest view's median, for judging single reads late.
	median atomic.Int64
}

// Latency buckets: bucket i holds latencies up to latBase·latFactor^i.
const (
	latBuckets = 64
	latBase    = 250 * time.Microsecond
	latFactor  = 1.2
	// minSamples is how many reads a node needs in the window before its
	// quantile counts.
	minSamples = 20
	// fallbackDelay is the adaptive delay before enough reads were seen.
	fallbackDelay = 100 * time.Millisecond
)

// Recent reads. The window's median of a node moves only once half of its
// 10-20 s of samples are slow, so a node that turns slow after a healthy
// period would keep its first attempts for that long and serve its keys'
// reads late (seen: +200 ms on one node, read p99 5x the healthy
// cluster's). Its last reads tell sooner: a read it lost to a hedged twin,
// or answered as late as a slow outlier of the pool, is late; its last
// recentLate reads all late make it slow at once, and one read in time
// (the reads still measuring it) undoes that. A node in time loses a hedge
// about once in 40 reads (the twin of a read past the pool's p95 wins about
// half the time), so four in a row is not chance.
const recentLate = 4

type nodeLatency struct {
	last   atomic.Int64 // the latest observation, unix nanos
	gen    atomic.Int64 // start of the current generation, unix nanos
	cur    atomic.Int32 // index of the current generation
	counts [2][latBuckets]atomic.Uint64
	// late counts the node's reads late in a row (see recentLate).
	late atomic.Int32
}

// lateInARow reports whether the node's last recentLate reads were late.
func (nl *nodeLatency) lateInARow() bool { return nl.late.Load() >= recentLate }

func newLatencyWindow(span time.Duration) *latencyWindow {
	return &latencyWindow{span: span}
}

func bucketOf(d time.Duration) int {
	if d <= latBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(latBase)) / math.Log(latFactor)))
	return min(i, latBuckets-1)
}

func bucketBound(i int) time.Duration {
	return time.Duration(float64(latBase) * math.Pow(latFactor, float64(i)))
}

// observe records a read's first-byte latency d on node; with factor > 0
// it also counts whether the read was late: as slow as an outlier of the
// pool's last view (see slowOutlier).
func (w *latencyWindow) observe(node string, d time.Duration, factor float64) {
	nl := w.node(node)
	nl.count(d, w.span)
	if median := time.Duration(w.median.Load()); factor > 0 && median > 0 && slowOutlier(d, median, factor) {
		w.lateRead(nl)
	} else {
		nl.late.Store(0)
	}
}

// observeLost records a read node lost to its hedged twin after waiting
// d: a late read, and (if sample) d as a sample of the node's latency, a
// lower bound.
func (w *latencyWindow) observeLost(node string, d time.Duration, sample bool) {
	nl := w.node(node)
	if sample {
		nl.count(d, w.span)
	} else {
		nl.last.Store(time.Now().UnixNano())
	}
	w.lateRead(nl)
}

// lateRead counts a late read of nl; the one that makes recentLate in a
// row expires the cached view, so that the next read avoids the node.
func (w *latencyWindow) lateRead(nl *nodeLatency) {
	if nl.late.Add(1) == recentLate {
		w.expire()
	}
}

func (w *latencyWindow) node(name string) *nodeLatency {
	v, ok := w.nodes.Load(name)
	if !ok {
		v, _ = w.nodes.LoadOrStore(name, new(nodeLatency))
	}
	return v.(*nodeLatency)
}

// count adds d to the node's current generation.
func (nl *nodeLatency) count(d, span time.Duration) {
	now := time.Now().UnixNano()
	nl.last.Store(now)
	g := nl.gen.Load()
	if now-g > int64(span) && nl.gen.CompareAndSwap(g, now) {
		// A new generation: the older one is cleared and becomes current.
		next := 1 - nl.cur.Load()
		for i := range nl.counts[next] {
			nl.counts[next][i].Store(0)
		}
		nl.cur.Store(next)
	}
	nl.counts[nl.cur.Load()][bucketOf(d)].Add(1)
}

// latencyView is what the window says at one moment: the adaptive hedge
// delay and the nodes that answer reads slowly.
type latencyView struct {
	delay  time.Duration
	slow   []string                 // nodes whose p50 is an outlier (see slowOutlier)
	p50    map[string]time.Duration // nodes with enough samples
	median time.Duration            // median of p50 over those nodes
	at     time.Time                // when it was computed
}

// expire makes the next view be computed afresh.
func (w *latencyWindow) expire() {
	w.cacheMu.Lock()
	w.cachedAt = time.Time{}
	w.cacheMu.Unlock()
	w.fresh.Store(nil)
}

// view computes the window's view, at most every 250 ms: the adaptive
// hedge delay (the median over nodes of their q quantile, at least floor,
// below ceiling (try_timeout) if set) and the slow nodes (factor <= 0:
// none).
func (w *latencyWindow) view(q float64, floor, ceiling time.Duration, factor float64) *latencyView {
	if v := w.fresh.Load(); v != nil && time.Since(v.at) < 250*time.Millisecond {
		return v
	}
	w.cacheMu.Lock()
	defer w.cacheMu.Unlock()
	if time.Since(w.cachedAt) < 250*time.Millisecond && w.cached != nil {
		return w.cached
	}
	v := &latencyView{p50: map[string]time.Duration{}}
	var qs, p50s []time.Duration
	// A node already slow gets one read in slowSampleEvery: it is judged
	// on fewer samples, and keeps its verdict while it has too few even
	// for that (else it would flip back after each generation, and its
	// keys' reads would wait on it again until it stood out anew).
	var wasSlow []string
	if w.cached != nil {
		wasSlow = w.cached.slow
	}
	few := map[string]time.Duration{} // was slow, fewer than minSamples: its p50, or 0 with too few
	var late []string                 // nodes whose last reads were all late (see recentLate)
	seen := 0                         // nodes with recent reads
	now := time.Now().UnixNano()
	w.nodes.Range(func(k, val any) bool {
		nl := val.(*nodeLatency)
		if now-nl.last.Load() > 2*int64(w.span) {
			// Nothing observed for two spans (a node reads avoid, or
			// that was down): its old samples say nothing about it now.
			return true
		}
		seen++
		if nl.lateInARow() {
			late = append(late, k.(string))
		}
		var counts [latBuckets]uint64
		var total uint64
		for g := range nl.counts {
			for i := range counts {
				c := nl.counts[g][i].Load()
				counts[i] += c
				total += c
			}
		}
		if total < minSamples {
			if name := k.(string); slices.Contains(wasSlow, name) {
				few[name] = 0
				if total >= minSamples/4 {
					few[name] = quantileOf(counts[:], total, 0.5)
				}
			}
			return true
		}
		qs = append(qs, quantileOf(counts[:], total, q))
		p := quantileOf(counts[:], total, 0.5)
		p50s = append(p50s, p)
		v.p50[k.(string)] = p
		return true
	})
	d := fallbackDelay
	if len(qs) > 0 {
		slices.Sort(qs)
		d = qs[(len(qs)-1)/2]
	}
	d = max(d, floor)
	if ceiling > 0 && d >= ceiling {
		d = ceiling / 2
	}
	v.delay = d
	if len(p50s) >= 3 && factor > 0 {
		// At least three nodes: the median of two says nothing about
		// which one is the outlier.
		slices.Sort(p50s)
		v.median = p50s[(len(p50s)-1)/2]
		for n, p := range v.p50 {
			if slowOutlier(p, v.median, factor) {
				v.slow = append(v.slow, n)
			}
		}
		for n, p := range few {
			if p == 0 || slowOutlier(p, v.median, factor) {
				v.slow = append(v.slow, n)
			}
		}
	}
	// Late in a row: an outlier only while fewer than half of the nodes
	// seen are (when every node is late the pool is slow, not a node).
	if factor > 0 && 2*len(late) < seen {
		for _, n := range late {
			if !slices.Contains(v.slow, n) {
				v.slow = append(v.slow, n)
			}
		}
	}
	slices.Sort(v.slow)
	w.median.Store(int64(v.median))
	w.cached, w.cachedAt = v, time.Now()
	v.at = w.cachedAt
	w.fresh.Store(v)
	return v
}

// quantileOf is the bucket bound below which a fraction q of the total
// samples lie.
func quantileOf(counts []uint64, total uint64, q float64) time.Duration {
	want := uint64(math.Ceil(q * float64(total)))
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= want {
			return bucketBound(i)
		}
	}
	return bucketBound(len(counts) - 1)
}

// slowOutlier: a node's median first byte is over factor times the pool's
// median and at least slowMargin more (a few milliseconds between fast
// nodes are not worth moving reads for).
func slowOutlier(p50, median time.Duration, factor float64) bool {
	return float64(p50) > factor*float64(median) && p50-median >= slowMargin
}
