package traffic

import (
	"math"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLatencyBuckets(t *testing.T) {
	// Bounds rise, each bucket at most a third wider than its lower bound.
	for i := 1; i < len(latBounds); i++ {
		require.Greater(t, latBounds[i], latBounds[i-1])
		lo, hi := latRange(i)
		require.LessOrEqual(t, (hi-lo)/lo, 1.0/3+1e-12, "bucket %d (%g, %g]", i, lo, hi)
	}
	assert.Equal(t, uint64(100_000), latBounds[0], "100 µs")
	assert.Equal(t, uint64(80e9), latBounds[len(latBounds)-1], "80 s")
	// Every value lies in its bucket (Prometheus le semantics: (lo, hi]).
	values := []uint64{0, 1, 99_999, 100_000, 100_001, 124_999, 125_000, 125_001, 499_999, 500_000, 500_001,
		1 << 20, 2_999_999, 3_000_000, 1e9, 1e9 + 1, 30e9, 79_999_999_999, 80e9, 80e9 + 1, 1 << 62, math.MaxUint64}
	for _, ns := range values {
		i := latIndex(ns)
		lo, hi := latRange(i)
		if i == numLat-1 {
			assert.Greater(t, float64(ns), lo, "%d", ns)
			continue
		}
		assert.True(t, float64(ns) > lo || i == 0, "%d ns above bucket %d's lower bound %g", ns, i, lo)
		assert.LessOrEqual(t, float64(ns), hi, "%d ns at most bucket %d's upper bound", ns, i)
	}
	// Exported bounds are grid bounds.
	for j, s := range ttfbSeconds {
		assert.Equal(t, uint64(s*1e9+0.5), latBounds[ttfbIdx[j]])
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name     string
		values   []time.Duration
		p50, p99 time.Duration
	}{
		{"empty", nil, 0, 0},
		{"one value", []time.Duration{10 * time.Millisecond}, 10 * time.Millisecond, 10 * time.Millisecond},
		{"uniform 1..100 ms", func() []time.Duration {
			var v []time.Duration
			for i := 1; i <= 100; i++ {
				v = append(v, time.Duration(i)*time.Millisecond)
			}
			return v
		}(), 50 * time.Millisecond, 99 * time.Millisecond},
		{"99 fast, 1 slow", func() []time.Duration {
			v := []time.Duration{2 * time.Second}
			for range 199 {
				v = append(v, 2*time.Millisecond)
			}
			return v
		}(), 2 * time.Millisecond, 2 * time.Millisecond},
		{"slow tail", func() []time.Duration {
			var v []time.Duration
			for range 90 {
				v = append(v, 5*time.Millisecond)
			}
			for range 10 {
				v = append(v, 800*time.Millisecond)
			}
			return v
		}(), 5 * time.Millisecond, 800 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h latHist
			for _, v := range tt.values {
				h.observe(v)
			}
			var c latCounts
			h.addTo(&c)
			near := func(want, got time.Duration, what string) {
				if want == 0 {
					assert.Zero(t, got, what)
					return
				}
				// within a bucket's width
				assert.InEpsilon(t, float64(want), float64(got), 1.0/3, "%s: want %v got %v", what, want, got)
			}
			near(tt.p50, c.quantile(0.5), "p50")
			near(tt.p99, c.quantile(0.99), "p99")
		})
	}
}

// end records one finished attempt.
func end(n *Node, status int, ttfb time.Duration, o Outcome, in, out int64) {
	n.Begin()
	n.End(s3op.GetObject, status, ttfb, o, in, out)
}

func TestWindow(t *testing.T) {
	type step struct {
		advance  time.Duration
		sample   bool // the sampler ticks after advancing
		attempts int  // then this many 200s of 10 ms, 100 B in, 1000 B out
		errors   int  // and this many 502s retried elsewhere
	}
	tests := []struct {
		name    string
		steps   []step
		span    time.Duration
		reqs    uint64
		errs    uint64
		retried uint64
	}{
		{"young node: since creation", []step{{advance: 10 * time.Second, attempts: 10, errors: 10}},
			10 * time.Second, 20, 10, 10},
		{"old traffic leaves the window", []step{
			{advance: 0, attempts: 100}, // at creation, 70 s before the end
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true, attempts: 7},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true},
			{advance: 5 * time.Second, sample: true, errors: 3},
			{advance: 5 * time.Second, attempts: 2},
		}, 60 * time.Second, 12, 3, 3},
		{"sampler started late: oldest sample", []step{
			{advance: 0, attempts: 50},
			{advance: 90 * time.Second, sample: true, attempts: 5},
			{advance: 30 * time.Second, attempts: 5},
		}, 30 * time.Second, 10, 0, 0},
		{"no sample old enough, node old: since creation", []step{
			{advance: 0, attempts: 4},
			{advance: 70 * time.Second, attempts: 6},
		}, 70 * time.Second, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			r := newRegistry(c.now)
			n := r.node("p", "a:1")
			for _, s := range tt.steps {
				now := c.add(s.advance)
				if s.sample {
					r.sampleAll(now)
				}
				for range s.attempts {
					end(n, 200, 10*time.Millisecond, OK, 100, 1000)
				}
				for range s.errors {
					end(n, 502, 10*time.Millisecond, Retried, 0, 0)
				}
			}
			w := n.Window(c.now())
			assert.Equal(t, tt.span, w.Span)
			assert.Equal(t, tt.reqs, w.Requests)
			assert.Equal(t, tt.errs, w.Errors)
			assert.Equal(t, tt.retried, w.Retried)
			assert.InDelta(t, float64(tt.reqs)/tt.span.Seconds(), w.ReqPerSec, 1e-9)
			if tt.reqs > 0 {
				assert.InDelta(t, 100*float64(tt.errs)/float64(tt.reqs), w.ErrorPct, 1e-9)
				assert.InEpsilon(t, float64(10*time.Millisecond), float64(w.P50), 0.25)
			}
			ok := tt.reqs - tt.errs
			assert.InDelta(t, float64(ok*100)/tt.span.Seconds(), w.BytesInPerSec, 1e-9)
			assert.InDelta(t, float64(ok*1000)/tt.span.Seconds(), w.BytesOutPerSec, 1e-9)
		})
	}
}

func TestWindowErrorsAndLatency(t *testing.T) {
	c := newClock()
	r := newRegistry(c.now)
	n := r.node("p", "a:1")
	c.add(20 * time.Second)
	for range 98 {
		end(n, 200, 4*time.Millisecond, OK, 0, 0)
	}
	end(n, 404, 4*time.Millisecond, OK, 0, 0)       // the client's problem
	end(n, 0, 0, Cancelled, 0, 0)                   // hedge loser: not the node's fault
	end(n, 500, 900*time.Millisecond, Failed, 0, 0) // error
	end(n, 0, 0, Failed, 0, 0)                      // no answer: error, no latency
	end(n, 503, 2*time.Millisecond, Retried, 0, 0)  // error
	end(n, 200, 3*time.Second, OK, 0, 0)            // slow but fine
	n.Begin()                                       // one in flight
	w := n.Window(c.now())
	assert.Equal(t, uint64(104), w.Requests)
	assert.Equal(t, uint64(3), w.Errors)
	assert.Equal(t, uint64(1), w.Retried)
	assert.InDelta(t, 300.0/104, w.ErrorPct, 1e-9)
	assert.Equal(t, int64(1), w.InFlight)
	assert.InEpsilon(t, float64(4*time.Millisecond), float64(w.P50), 0.25)
	assert.InEpsilon(t, float64(900*time.Millisecond), float64(w.P99), 0.25, "p99 %v", w.P99)
	assert.InDelta(t, 104.0/20, w.ReqPerSec, 1e-9)
}

func TestWindowShortSpan(t *testing.T) {
	c := newClock()
	r := newRegistry(c.now)
	n := r.node("p", "a:1")
	c.add(10 * time.Millisecond)
	end(n, 200, time.Millisecond, OK, 0, 0)
	end(n, 200, time.Millisecond, OK, 0, 0)
	w := n.Window(c.now())
	assert.Equal(t, 2.0, w.ReqPerSec, "rates divide by at least one second")
}

func TestPoolWindow(t *testing.T) {
	c := newClock()
	r := newRegistry(c.now)
	a := r.node("p", "a:1")
	c.add(30 * time.Second)
	b := r.node("p", "b:1") // 30 s younger
	c.add(30 * time.Second)
	for range 60 {
		end(a, 200, 2*time.Millisecond, OK, 10, 100)
	}
	for range 30 {
		end(b, 200, 50*time.Millisecond, OK, 10, 100)
	}
	end(b, 0, 0, Retried, 0, 0)
	a.Begin()
	b.Begin()
	b.Begin()
	w := r.pool("p").Window(c.now())
	assert.Equal(t, time.Minute, w.Span)
	assert.Equal(t, uint64(91), w.Requests)
	assert.Equal(t, uint64(1), w.Errors)
	assert.Equal(t, uint64(1), w.Retried)
	assert.InDelta(t, 60.0/60+31.0/30, w.ReqPerSec, 1e-9, "each node at its own rate")
	assert.InDelta(t, 600.0/60+300.0/30, w.BytesInPerSec, 1e-9)
	assert.InDelta(t, 6000.0/60+3000.0/30, w.BytesOutPerSec, 1e-9)
	assert.Equal(t, int64(3), w.InFlight)
	assert.InDelta(t, 100.0/91, w.ErrorPct, 1e-9)
	assert.InEpsilon(t, float64(2*time.Millisecond), float64(w.P50), 0.25)
	assert.InEpsilon(t, float64(50*time.Millisecond), float64(w.P99), 0.25)

	// Sum over chosen nodes: what the status page does with a pool's
	// configured nodes; nil (never seen) nodes count as nothing.
	assert.Equal(t, w, Sum([]*Node{a, nil, b}, c.now()))
	wa := Sum([]*Node{a}, c.now())
	assert.Equal(t, a.Window(c.now()), wa)
	assert.Equal(t, Window{}, Sum(nil, c.now()))
}

// TestSamplerRuns: the process registry's sampler ticks by itself (a
// node made through For starts it).
func TestSamplerRuns(t *testing.T) {
	n := For("sampler-test", "a:1")
	deadline := time.Now().Add(3 * SampleEvery)
	for {
		n.ring.mu.Lock()
		sampled := n.ring.s[0].t != 0
		n.ring.mu.Unlock()
		if sampled {
			return
		}
		require.True(t, time.Now().Before(deadline), "no sample within %v", 3*SampleEvery)
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
