package traffic

import (
	"sync"
	"time"
)

// The status page shows each node's last minute. Attempts only bump
// cumulative counters (which /metrics needs anyway); a background sampler
// copies a node's totals every SampleEvery into a small ring, and Window
// subtracts the newest copy at least WindowSpan old from the live totals.
// So the hot path pays nothing for the window, the window's end is always
// live, and its start is at most SampleEvery older than WindowSpan.
const (
	// WindowSpan is the length of the status page's window.
	WindowSpan = time.Minute
	// SampleEvery is the sampler's period.
	SampleEvery = 5 * time.Second
	// ringLen holds WindowSpan/SampleEvery samples plus slack for a late
	// tick.
	ringLen = int(WindowSpan/SampleEvery) + 2
)

// Window is a node's (or a pool's) traffic over the last WindowSpan, for
// the status page.
type Window struct {
	// Span is the time the window covers: WindowSpan to WindowSpan +
	// SampleEvery, less while the node is younger than that.
	Span time.Duration
	// Requests counts the attempts that ended in the window, Errors those
	// that were errors of the node (not Cancelled; no response or 5xx) and
	// Retried those that failed and went on to another node.
	Requests, Errors, Retried uint64
	// ReqPerSec is Requests per second of Span.
	ReqPerSec float64
	// ErrorPct is 100 * Errors / Requests (0 without requests).
	ErrorPct float64
	// P50 and P99 are first-byte latency percentiles of the attempts with
	// a response (0 without any), within a few percent.
	P50, P99 time.Duration
	// InFlight is the number of attempts in flight now.
	InFlight int64
	// BytesInPerSec and BytesOutPerSec are the request and response bytes
	// per second (HAProxy's bytes in and out).
	BytesInPerSec, BytesOutPerSec float64
}

// sample is a copy of a node's cumulative totals at t (unix ns; 0: none).
type sample struct {
	t                         int64
	requests, errors, retried uint64
	bytesIn, bytesOut         uint64
	lat                       latCounts
}

type ring struct {
	mu   sync.Mutex
	s    [ringLen]sample
	next int
}

// totals reads n's cumulative counters into s (not s.t).
func (n *Node) totals(s *sample) {
	*s = sample{}
	for op := range n.reqs {
		for sc := range n.reqs[op] {
			for o := range n.reqs[op][sc] {
				c := n.reqs[op][sc][o].Load()
				if c == 0 {
					continue
				}
				s.requests += c
				if Outcome(o) != Cancelled && (sc == statusNone || sc == status5xx) {
					s.errors += c
				}
				if Outcome(o) == Retried {
					s.retried += c
				}
			}
		}
	}
	s.bytesIn = n.bytesIn.Load()
	s.bytesOut = n.bytesOut.Load()
	for op := range n.lat {
		n.lat[op].addTo(&s.lat)
	}
}

// sample stores n's totals at now in its ring.
func (n *Node) sample(now time.Time) {
	var s sample
	n.totals(&s)
	s.t = now.UnixNano()
	n.ring.mu.Lock()
	n.ring.s[n.ring.next] = s
	n.ring.next = (n.ring.next + 1) % ringLen
	n.ring.mu.Unlock()
}

// base returns the window's start: the newest sample at least WindowSpan
// before now; for a node younger than WindowSpan, zero at its creation;
// else the oldest sample (the sampler started late), else zero at creation.
func (n *Node) base(now time.Time, out *sample) {
	nowNs := now.UnixNano()
	cut := now.Add(-WindowSpan).UnixNano()
	created := n.created.UnixNano()
	best, oldest := -1, -1
	n.ring.mu.Lock()
	defer n.ring.mu.Unlock()
	for i := range n.ring.s {
		t := n.ring.s[i].t
		if t == 0 || t > nowNs {
			continue
		}
		if t <= cut && (best < 0 || t > n.ring.s[best].t) {
			best = i
		}
		if oldest < 0 || t < n.ring.s[oldest].t {
			oldest = i
		}
	}
	switch {
	case best >= 0:
		*out = n.ring.s[best]
	case created > cut || oldest < 0:
		*out = sample{t: created}
	default:
		*out = n.ring.s[oldest]
	}
}

// delta is the traffic between two samples.
type delta struct {
	span                      time.Duration
	requests, errors, retried uint64
	bytesIn, bytesOut         uint64
	lat                       latCounts
	inFlight                  int64
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func (n *Node) delta(now time.Time) delta {
	var cur, base sample
	n.totals(&cur)
	n.base(now, &base)
	d := delta{
		span:     time.Duration(now.UnixNano() - base.t),
		requests: sub(cur.requests, base.requests),
		errors:   sub(cur.errors, base.errors),
		retried:  sub(cur.retried, base.retried),
		bytesIn:  sub(cur.bytesIn, base.bytesIn),
		bytesOut: sub(cur.bytesOut, base.bytesOut),
		inFlight: inFlight(n.begins.Load(), cur.requests),
	}
	for i := range d.lat {
		d.lat[i] = sub(cur.lat[i], base.lat[i])
	}
	return d
}

// perSec divides by the span, at least one second (a node seen for a few
// milliseconds did not do a thousand requests per second).
func perSec(v uint64, span time.Duration) float64 {
	return float64(v) / max(span, time.Second).Seconds()
}

func (d *delta) window() Window {
	w := Window{
		Span: d.span, Requests: d.requests, Errors: d.errors, Retried: d.retried,
		ReqPerSec: perSec(d.requests, d.span), InFlight: d.inFlight,
		BytesInPerSec: perSec(d.bytesIn, d.span), BytesOutPerSec: perSec(d.bytesOut, d.span),
		P50: d.lat.quantile(0.50), P99: d.lat.quantile(0.99),
	}
	if d.requests > 0 {
		w.ErrorPct = 100 * float64(d.errors) / float64(d.requests)
	}
	return w
}

// Window returns n's traffic over the last WindowSpan before now; zero
// for a nil node.
func (n *Node) Window(now time.Time) Window {
	if n == nil {
		return Window{}
	}
	d := n.delta(now)
	return d.window()
}

// Window returns the pool's traffic over the last WindowSpan before now:
// Sum of every node it has seen (including nodes a reload removed from
// the config, whose traffic leaves the window within a minute). Zero for
// a nil pool.
func (p *PoolStats) Window(now time.Time) Window {
	if p == nil {
		return Window{}
	}
	return Sum(p.Nodes(), now)
}

// Sum returns the traffic of nodes together over the last WindowSpan
// before now, as a pool's totals: rates add up node by node (so a node
// younger than the window counts at its own rate), error % is of the
// summed counts, percentiles are of the merged latencies, in flight is
// the sum. Nil nodes are skipped. The status page sums a pool's
// configured nodes this way.
func Sum(nodes []*Node, now time.Time) Window {
	var sum delta
	var w Window
	for _, n := range nodes {
		if n == nil {
			continue
		}
		d := n.delta(now)
		sum.span = max(sum.span, d.span)
		sum.requests += d.requests
		sum.errors += d.errors
		sum.retried += d.retried
		sum.inFlight += d.inFlight
		for i := range sum.lat {
			sum.lat[i] += d.lat[i]
		}
		w.ReqPerSec += perSec(d.requests, d.span)
		w.BytesInPerSec += perSec(d.bytesIn, d.span)
		w.BytesOutPerSec += perSec(d.bytesOut, d.span)
	}
	w.Span, w.Requests, w.Errors, w.Retried, w.InFlight = sum.span, sum.requests, sum.errors, sum.retried, sum.inFlight
	w.P50, w.P99 = sum.lat.quantile(0.50), sum.lat.quantile(0.99)
	if sum.requests > 0 {
		w.ErrorPct = 100 * float64(sum.errors) / float64(sum.requests)
	}
	return w
}

// sampleAll samples every node of r at now.
func (r *registry) sampleAll(now time.Time) {
	for _, p := range r.poolList() {
		for _, n := range p.Nodes() {
			n.sample(now)
		}
	}
}

var samplerOnce sync.Once

// startSampler starts std's sampler the first time a node is made. It runs
// for the life of the process, like the state it samples: a config reload
// neither stops nor restarts it. Tests that check for leaked goroutines
// ignore it by its function, traffic.sampleLoop.
func startSampler() {
	samplerOnce.Do(func() { go sampleLoop() })
}

// sampleLoop samples std every SampleEvery, forever.
func sampleLoop() {
	t := time.NewTicker(SampleEvery)
	defer t.Stop()
	for now := range t.C {
		std.sampleAll(now)
	}
}
