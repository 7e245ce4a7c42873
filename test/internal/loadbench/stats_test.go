package loadbench

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(100 - i) // reversed: Percentile must sort
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"single p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"1..100 p50", hundred, 50, ms(50)},
		{"1..100 p99", hundred, 99, ms(99)},
		{"1..100 p100", hundred, 100, ms(100)},
		{"1..100 p0", hundred, 0, ms(1)},
		{"four p50 is the 2nd", []time.Duration{ms(4), ms(1), ms(3), ms(2)}, 50, ms(2)},
		{"four p75 is the 3rd", []time.Duration{ms(4), ms(1), ms(3), ms(2)}, 75, ms(3)},
		{"four p99 is the max", []time.Duration{ms(4), ms(1), ms(3), ms(2)}, 99, ms(4)},
		{"outlier only moves p99", append(fill(99, ms(1)), ms(1000)), 99, ms(1)},
		{"two outliers reach p99", append(fill(98, ms(1)), ms(1000), ms(1000)), 99, ms(1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := append([]time.Duration(nil), tc.samples...)
			assert.Equal(t, tc.want, Percentile(s, tc.p))
		})
	}
}

func fill(n int, d time.Duration) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

func TestPercentileMatchesSortedIndexOnRandomData(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(r.IntN(1e6))
	}
	p50 := Percentile(s, 50)
	p99 := Percentile(s, 99)
	// s is sorted now; nearest rank of 1000 samples is index 499 and 989.
	assert.Equal(t, s[499], p50)
	assert.Equal(t, s[989], p99)
	below := 0
	for _, v := range s {
		if v <= p99 {
			below++
		}
	}
	assert.GreaterOrEqual(t, below, 990)
}

func TestMedian(t *testing.T) {
	assert.Equal(t, 0.0, Median(nil))
	assert.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	xs := []float64{3, 1, 2}
	Median(xs)
	assert.Equal(t, []float64{3, 1, 2}, xs, "Median must not reorder its input")
}

func TestMedianResultKeepsDerivedMetricsConsistent(t *testing.T) {
	rs := []Result{
		{Requests: 1000, Elapsed: time.Second, P50: ms(1), P99: ms(10), CPUSecs: 1, RSSBytes: 10},
		{Requests: 2000, Elapsed: time.Second, P50: ms(2), P99: ms(20), CPUSecs: 1, RSSBytes: 30},
		{Requests: 4000, Elapsed: time.Second, P50: ms(3), P99: ms(90), CPUSecs: 1, RSSBytes: 20},
	}
	m := MedianResult(rs)
	assert.InDelta(t, 2000, m.RPS(), 1, "median of 1000, 2000, 4000 req/s")
	assert.Equal(t, ms(2), m.P50)
	assert.Equal(t, ms(20), m.P99)
	// CPU per 10k: 10, 5, 2.5 -> median 5.
	assert.InDelta(t, 5, m.CPUPer10k(), 0.01)
	assert.Equal(t, int64(30), m.RSSBytes, "RSS is the peak over the runs")
	assert.Equal(t, 7000, m.Requests)

	unknown := MedianResult([]Result{{Requests: 10, Elapsed: time.Second, CPUSecs: -1, RSSBytes: -1}})
	assert.Less(t, unknown.CPUPer10k(), 0.0)
	assert.Less(t, unknown.RSSBytes, int64(0))
	require.InDelta(t, 10, unknown.RPS(), 0.01)
}
