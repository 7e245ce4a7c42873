package traffic

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histograms.
//
// An atomic add costs 8-20 ns on the virtual machines this runs on, so
// each attempt bumps one latency bucket and one sum, per operation class,
// and nothing else: the exported Prometheus histogram and the status
// page's percentiles are both read from the same fine buckets. The fine
// buckets follow a 1-1.25-1.5-2-2.5-3-4-5-6-8 series per decade (each at
// most a third wider than the previous), so that
//   - percentiles interpolated within a bucket are within a few percent,
//   - the exported bounds (ttfbSeconds, round numbers an operator can
//     write in a query) are bucket bounds too, so the exported counts are
//     exact.
//
// Buckets are Prometheus style: bucket i counts values v with
// latBounds[i-1] < v <= latBounds[i]; the last one is +Inf.
var (
	latBounds = latGrid(-4, 1) // 100 µs .. 80 s, in ns
	numLat    = len(latBounds) + 1

	// ttfbSeconds are the exported first-byte buckets. S3 first bytes on a
	// LAN are a few milliseconds for small objects and reads, tens to
	// hundreds for listings, erasure-coded writes and loaded nodes; the
	// top buckets catch a node that stalls.
	ttfbSeconds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	ttfbIdx     = gridIndexes(ttfbSeconds)

	// latStart[l] is the first bucket that can hold a value of bit length
	// l: the index search starts there and moves at most a few steps.
	latStart = latStarts()
)

// latMaxBuckets sizes latHist's array (checked in init against latGrid).
const latMaxBuckets = 61

// latGrid returns the 1-1.25-1.5-2-2.5-3-4-5-6-8 series from 10^from to
// 8×10^to seconds, in ns.
func latGrid(from, to int) []uint64 {
	mant := []uint64{100, 125, 150, 200, 250, 300, 400, 500, 600, 800} // hundredths
	var out []uint64
	for k := from; k <= to; k++ {
		// 10^k s = 10^(k+9) ns; mant/100 of it.
		base := uint64(1)
		for range k + 9 {
			base *= 10
		}
		for _, m := range mant {
			out = append(out, m*base/100)
		}
	}
	return out
}

func gridIndexes(secs []float64) []int {
	out := make([]int, len(secs))
	for j, s := range secs {
		ns := uint64(s*1e9 + 0.5)
		out[j] = -1
		for i, b := range latBounds {
			if b == ns {
				out[j] = i
			}
		}
		if out[j] < 0 {
			panic("traffic: exported bucket bound is not a fine bucket bound")
		}
	}
	return out
}

func latStarts() [65]uint8 {
	var s [65]uint8
	for l := 1; l <= 64; l++ {
		lo := uint64(1) << (l - 1) // smallest value of bit length l
		i := 0
		for i < len(latBounds) && lo > latBounds[i] {
			i++
		}
		s[l] = uint8(i)
	}
	return s
}

func init() {
	if numLat != latMaxBuckets {
		panic("traffic: latMaxBuckets does not match the latency grid")
	}
}

// latIndex is the bucket of a value of ns nanoseconds.
func latIndex(ns uint64) int {
	i := int(latStart[bits.Len64(ns)])
	for i < len(latBounds) && ns > latBounds[i] {
		i++
	}
	return i
}

// latRange is bucket i's lower and upper bound in ns (the +Inf bucket
// reports its lower bound for both).
func latRange(i int) (lo, hi float64) {
	switch {
	case i <= 0:
		return 0, float64(latBounds[0])
	case i >= len(latBounds):
		b := float64(latBounds[len(latBounds)-1])
		return b, b
	}
	return float64(latBounds[i-1]), float64(latBounds[i])
}

// latHist is one operation class's first-byte latencies: two atomic adds
// per observation.
type latHist struct {
	counts [latMaxBuckets]atomic.Uint64
	sumNs  atomic.Uint64
}

func (h *latHist) observe(d time.Duration) {
	ns := uint64(d)
	h.counts[latIndex(ns)].Add(1)
	h.sumNs.Add(ns)
}

// latCounts is a copy of fine bucket counts.
type latCounts [latMaxBuckets]uint64

// addTo adds h's counts to out.
func (h *latHist) addTo(out *latCounts) {
	for i := range h.counts {
		out[i] += h.counts[i].Load()
	}
}

// read returns the observation count, the sum in seconds and the
// cumulative count per exported bound (as prometheus.MustNewConstHistogram
// wants); count 0 and a nil map when nothing was observed.
func (h *latHist) read() (uint64, float64, map[float64]uint64) {
	var c latCounts
	h.addTo(&c)
	var total uint64
	for _, v := range c {
		total += v
	}
	if total == 0 {
		return 0, 0, nil
	}
	cum := make(map[float64]uint64, len(ttfbSeconds))
	var acc uint64
	i := 0
	for j, b := range ttfbSeconds {
		for ; i <= ttfbIdx[j]; i++ {
			acc += c[i]
		}
		cum[b] = acc
	}
	return total, float64(h.sumNs.Load()) / 1e9, cum
}

// quantile estimates the q-quantile (0 < q < 1) of the counts, linear
// within the bucket it falls in; 0 when there are none.
func (c *latCounts) quantile(q float64) time.Duration {
	var total uint64
	for _, v := range c {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, v := range c {
		if v == 0 {
			continue
		}
		if cum+float64(v) >= rank {
			lo, hi := latRange(i)
			return time.Duration(lo + (hi-lo)*(rank-cum)/float64(v))
		}
		cum += float64(v)
	}
	lo, _ := latRange(numLat - 1)
	return time.Duration(lo)
}

// holdSeconds are the bounds of the hold wait histogram.
var (
	holdSeconds = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	holdBounds  = func() []int64 {
		out := make([]int64, len(holdSeconds))
		for i, s := range holdSeconds {
			out[i] = int64(s * 1e9)
		}
		return out
	}()
)

// holdHist is the hold wait histogram (a hold is rare: a plain scan).
type holdHist struct {
	counts [16]atomic.Uint64
	sumNs  atomic.Uint64
}

func (h *holdHist) observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(holdBounds) && ns > holdBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(ns))
}

func (h *holdHist) read() (uint64, float64, map[float64]uint64) {
	cum := make(map[float64]uint64, len(holdSeconds))
	var acc uint64
	for i, b := range holdSeconds {
		acc += h.counts[i].Load()
		cum[b] = acc
	}
	acc += h.counts[len(holdSeconds)].Load()
	return acc, float64(h.sumNs.Load()) / 1e9, cum
}
