package healthready

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPoolUpstreams: the accessor reports every configured upstream in
// order and which are routable; a pool failing open still reports its
// unready nodes as not routable; unknown names are not found.
func TestPoolUpstreams(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	cfg := fastPool("accessor", a.addr(), b.addr())
	h := provision(t, cfg)
	eventually(t, 2*time.Second, func() bool { return stateOf(h, 0) == nodeReady && stateOf(h, 1) == nodeReady }, "both ready")

	ups, routable, ok := PoolUpstreams("accessor")
	require.True(t, ok)
	assert.Equal(t, []string{a.addr(), b.addr()}, ups)
	assert.Equal(t, []bool{true, true}, routable)

	b.mode.Store(mode503)
	eventually(t, 3*time.Second, func() bool { return stateOf(h, 1) == nodeNotReady }, "b not ready")
	_, routable, _ = PoolUpstreams("accessor")
	assert.Equal(t, []bool{true, false}, routable)

	a.mode.Store(mode503)
	eventually(t, 3*time.Second, func() bool { return stateOf(h, 0) == nodeNotReady }, "a not ready")
	assert.Len(t, upstreamDials(h), 2, "the pool fails open for traffic")
	_, routable, _ = PoolUpstreams("accessor")
	assert.Equal(t, []bool{false, false}, routable, "failing open does not make a node routable")

	_, _, ok = PoolUpstreams("no-such-pool")
	assert.False(t, ok)
	_, _, ok = PoolUpstreams("")
	assert.False(t, ok)
}
