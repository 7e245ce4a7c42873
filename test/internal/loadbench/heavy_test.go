package loadbench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNodeShares(t *testing.T) {
	tests := []struct {
		counts  []int64
		want    []float64
		maxMean float64
		str     string
	}{
		{[]int64{25, 25, 25, 25}, []float64{.25, .25, .25, .25}, 1, "25/25/25/25% (max 1.00x mean)"},
		{[]int64{0, 0, 100, 0}, []float64{0, 0, 1, 0}, 4, "0/0/100/0% (max 4.00x mean)"},
		{[]int64{10, 30, 30, 30}, []float64{.1, .3, .3, .3}, 1.2, "10/30/30/30% (max 1.20x mean)"},
		{[]int64{0, 0}, []float64{0, 0}, 0, "0/0% (max 0.00x mean)"},
	}
	for _, tc := range tests {
		s := NodeShares(tc.counts)
		assert.InDeltaSlice(t, tc.want, s.Fractions, 1e-9, "%v", tc.counts)
		assert.InDelta(t, tc.maxMean, s.MaxOverMean, 1e-9, "%v", tc.counts)
		assert.Equal(t, tc.str, s.String())
	}
	assert.Equal(t, "-", Shares{}.String())
	assert.Equal(t, []float64{.3, .3, .3, .1}, NodeShares([]int64{10, 30, 30, 30}).SortedDesc())

	c := &Cell{NodeBytes: [][]int64{{1, 2, 3, 4}, {3, 2, 1, 0}}}
	assert.Equal(t, "25/25/25/25% (max 1.00x mean)", c.NodeShares().String())
}
