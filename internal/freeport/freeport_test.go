package freeport

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"32768\t60999\n", 32768, 60999, true},
		{"1024 65535", 1024, 65535, true},
		{"", 0, 0, false},
		{"32768", 0, 0, false},
		{"60999 32768", 0, 0, false},
		{"a b", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			lo, hi, ok := parsePortRange(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.lo, lo)
			assert.Equal(t, tt.hi, hi)
		})
	}
}

// Ports are bindable, outside the ephemeral range (no outgoing connection
// can take one before it is bound), and never handed out twice in one
// process, across calls too (a test that picks its listen port and its
// admin port with two calls must not get one port for both).
func TestPortsAvoidEphemeralRangeAndRepeats(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	require.NoError(t, err, "Linux's ephemeral port range")
	lo, hi, ok := parsePortRange(string(b))
	require.True(t, ok, "range %q", b)

	seen := map[int]bool{}
	for call := 0; call < 50; call++ {
		ports, err := Ports(1 + call%4)
		require.NoError(t, err)
		require.Len(t, ports, 1+call%4)
		for _, p := range ports {
			assert.False(t, seen[p], "port %d handed out twice", p)
			seen[p] = true
			if hi-lo < 65535-lowestPickedPort { // room outside the range
				assert.True(t, p < lo || p > hi, "port %d inside the ephemeral range %d-%d", p, lo, hi)
				assert.GreaterOrEqual(t, p, lowestPickedPort)
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			require.NoError(t, err, "port %d bindable", p)
			l.Close()
		}
	}
	addr := Addr(t)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", addr[:len("127.0.0.1")])
	assert.NotEmpty(t, port)
}
