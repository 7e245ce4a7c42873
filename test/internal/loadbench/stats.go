package loadbench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of the samples by
// the nearest-rank method: the smallest sample such that at least p% of the
// samples are <= it. It sorts samples in place. An empty input gives 0.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	if !slices.IsSorted(samples) {
		slices.Sort(samples)
	}
	if p <= 0 {
		return samples[0]
	}
	if p >= 100 {
		return samples[len(samples)-1]
	}
	rank := int(math.Ceil(p / 100 * float64(len(samples))))
	if rank < 1 {
		rank = 1
	}
	return samples[rank-1]
}

// Median returns the median of xs (the mean of the two middle values for
// an even count), leaving xs unchanged. An empty input gives 0.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Result is what one run of one workload through one target measured.
type Result struct {
	Requests  int           // completed requests (or uploads), errors included
	Errors    int           // transport errors and non-2xx answers
	Elapsed   time.Duration // wall time of the run
	P50, P99  time.Duration // latency of the successful requests
	CPUSecs   float64       // proxy CPU (user+system) during the run; <0: unknown
	RSSBytes  int64         // proxy resident set size right after the run; <0: unknown
	Bytes     int64         // payload bytes moved (request or response bodies)
	ErrSample string        // one error, for the report
}

// RPS is the rate of successful requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// CPUPer10k is the proxy CPU seconds spent per 10,000 successful requests;
// negative when unknown.
func (r Result) CPUPer10k() float64 {
	ok := r.Requests - r.Errors
	if r.CPUSecs < 0 || ok <= 0 {
		return -1
	}
	return r.CPUSecs / float64(ok) * 10000
}

// MedianResult folds repeated runs of one cell into one row: the median of
// each metric taken separately (the machine is noisy; medians resist one bad
// run), the sum of requests and errors.
func MedianResult(rs []Result) Result {
	if len(rs) == 0 {
		return Result{CPUSecs: -1, RSSBytes: -1}
	}
	var out Result
	var rps, p50, p99, cpu, rss []float64
	for _, r := range rs {
		out.Requests += r.Requests
		out.Errors += r.Errors
		out.Elapsed += r.Elapsed
		out.Bytes += r.Bytes
		if r.ErrSample != "" && out.ErrSample == "" {
			out.ErrSample = r.ErrSample
		}
		rps = append(rps, r.RPS())
		p50 = append(p50, float64(r.P50))
		p99 = append(p99, float64(r.P99))
		if c := r.CPUPer10k(); c >= 0 {
			cpu = append(cpu, c)
		}
		if r.RSSBytes >= 0 {
			rss = append(rss, float64(r.RSSBytes))
		}
	}
	out.P50 = time.Duration(Median(p50))
	out.P99 = time.Duration(Median(p99))
	// Keep RPS() and CPUPer10k() meaningful on the folded row: scale the
	// elapsed time and CPU seconds so that they yield the medians.
	ok := out.Requests - out.Errors
	if m := Median(rps); m > 0 && ok > 0 {
		out.Elapsed = time.Duration(float64(ok) / m * float64(time.Second))
	}
	out.CPUSecs = -1
	if len(cpu) > 0 && ok > 0 {
		out.CPUSecs = Median(cpu) * float64(ok) / 10000
	}
	out.RSSBytes = -1
	if len(rss) > 0 {
		out.RSSBytes = int64(slices.Max(rss))
	}
	return out
}
