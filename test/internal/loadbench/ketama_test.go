package loadbench

import (
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sixServers() []string {
	s := make([]string, 6)
	for i := range s {
		s[i] = fmt.Sprintf("127.0.0.1:%d", 9101+i)
	}
	return s
}

func TestKetamaRingFirstPointIsCrcOfHostNulPortZero(t *testing.T) {
	r := NewKetamaRing([]string{"cluster01-1.minio.xunku.in:9000"})
	require.Equal(t, 160, r.Points())
	// nginx: crc32 over "host" "\0" "port" then the 4 bytes of prev (0).
	want := crc32.ChecksumIEEE([]byte("cluster01-1.minio.xunku.in\x009000\x00\x00\x00\x00"))
	found := false
	for _, p := range r.points {
		if p.hash == want {
			found = true
		}
	}
	assert.True(t, found, "the first point of a server is crc32(host NUL port 0x00000000)")
}

func TestSplitNginxServer(t *testing.T) {
	tests := []struct{ in, host, port string }{
		{"127.0.0.1:9000", "127.0.0.1", "9000"},
		{"minio-1", "minio-1", ""},
		{"[::1]:80", "[::1]", "80"},
		{"host:abc", "host:abc", ""},
	}
	for _, tc := range tests {
		h, p := splitNginxServer(tc.in)
		assert.Equal(t, tc.host, h, tc.in)
		assert.Equal(t, tc.port, p, tc.in)
	}
}

func TestKetamaRingDistributionSanity(t *testing.T) {
	servers := sixServers()
	r := NewKetamaRing(servers)
	assert.Equal(t, 6*160, r.Points())
	counts := map[string]int{}
	const n = 60000
	for i := 0; i < n; i++ {
		counts[r.Lookup(fmt.Sprintf("session-%d", i), nil)]++
	}
	require.Len(t, counts, 6, "every server owns part of the ring")
	for s, c := range counts {
		// 160 points per server: within +-35% of the fair share.
		assert.InDelta(t, n/6, c, n/6*0.35, "server %s got %d of %d keys", s, c, n)
	}
}

func TestKetamaRingRemovalMovesOnlyTheRemovedServersKeys(t *testing.T) {
	servers := sixServers()
	full := NewKetamaRing(servers)
	removed := servers[2]
	less := NewKetamaRing(append(append([]string{}, servers[:2]...), servers[3:]...))
	down := func(s string) bool { return s == removed }
	moved := 0
	for i := 0; i < 20000; i++ {
		k := fmt.Sprintf("k%d", i)
		before := full.Lookup(k, nil)
		after := less.Lookup(k, nil)
		// Skipping a down peer on the full ring is the same as rebuilding
		// the ring without it.
		assert.Equal(t, after, full.Lookup(k, down), k)
		if before != after {
			moved++
			assert.Equal(t, removed, before, "key %s moved although its server stayed", k)
		}
	}
	assert.Greater(t, moved, 0)
}

func TestKetamaLookupAllDown(t *testing.T) {
	r := NewKetamaRing(sixServers())
	assert.Equal(t, "", r.Lookup("x", func(string) bool { return true }))
	assert.Equal(t, "", (&KetamaRing{}).Lookup("x", nil))
}
