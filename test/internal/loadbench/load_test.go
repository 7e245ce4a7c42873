package loadbench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunClosedIsBoundedByCountAndMeasures(t *testing.T) {
	b, err := StartBackend(1, "127.0.0.1:0")
	require.NoError(t, err)
	defer b.Close()
	c := NewClient(4)
	r := RunClosed(context.Background(), LoadSpec{Concurrency: 4, Duration: 10 * time.Second, MaxRequests: 200},
		FastGET(c, "http://"+b.Addr, 1024, 100), 0)
	assert.Equal(t, 200, r.Requests, "stops at MaxRequests")
	assert.Equal(t, 0, r.Errors, r.ErrSample)
	assert.Equal(t, int64(200*1024), r.Bytes)
	assert.Equal(t, int64(200), b.Served())
	assert.Greater(t, r.P50, time.Duration(0))
	assert.GreaterOrEqual(t, r.P99, r.P50)
	assert.Less(t, r.Elapsed, 10*time.Second)
	assert.Greater(t, r.RPS(), 0.0)
}

func TestRunClosedIsBoundedByTimeAndCountsErrors(t *testing.T) {
	b, err := StartBackend(1, "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, b.Kill()) // every request is reset
	defer b.Close()
	c := NewClient(2)
	r := RunClosed(context.Background(), LoadSpec{Concurrency: 2, Duration: 300 * time.Millisecond, MaxRequests: 1 << 30},
		FastPUT(c, "http://"+b.Addr, 1000, 10), 0)
	assert.Less(t, r.Elapsed, 2*time.Second, "stops at Duration")
	assert.Greater(t, r.Errors, 0)
	assert.Equal(t, r.Requests, r.Errors)
	assert.NotEmpty(t, r.ErrSample)
	assert.Equal(t, 0.0, r.RPS())
}
