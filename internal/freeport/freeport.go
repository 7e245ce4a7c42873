// Package freeport hands out loopback ports for tests and test harnesses
// that start a listener after the port was picked: an in-process Caddy, a
// caddy or minio process, a fault proxy. It is the one place that picks
// such ports, for the plugin's packages and the test module alike.
//
// A port picked by listening on ":0" and closing again can be taken by
// someone else before the listener that needs it binds. Two hazards made
// tests of this project fail that way:
//
//   - The kernel hands out ":0" ports and the source ports of outgoing
//     connections from the same ephemeral range
//     (/proc/sys/net/ipv4/ip_local_port_range); a MinIO cluster's nodes open
//     many connections to each other, and one took a port before Caddy
//     could bind it ("address already in use").
//   - Caddy binds with SO_REUSEPORT. When two test processes (go test runs
//     packages in parallel) were handed the same port, both Caddys bound it
//     and the kernel split the connections between them: a test polled the
//     other process's status page.
//
// So ports are picked at random outside the ephemeral range (only another
// listener can take those), all ports of one call are held open at once
// (so they differ), and a process never hands out the same port twice.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowestPickedPort is the bottom of the range Ports picks from: above the
// ports services usually own.
const lowestPickedPort = 20000

// handedOut holds every port this process was given, so that a port whose
// first user closed it is not given to a second one.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// Ports returns n distinct loopback ports that were free a moment ago and
// that this process was never given before. When the ephemeral range
// leaves no room outside it, it falls back to ":0".
func Ports(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	take := func(l net.Listener) {
		p := l.Addr().(*net.TCPAddr).Port
		ls = append(ls, l)
		ports = append(ports, p)
		handedOut.ports[p] = true
	}
	lo, hi, ok := ephemeralRange()
	// ports lowestPickedPort..lo-1 and hi+1..65535, numbered 0..room-1
	below := max(lo-lowestPickedPort, 0)
	room := below + max(65535-max(hi, lowestPickedPort-1), 0)
	for tries := 0; ok && room > 0 && len(ports) < n && tries < 50*n; tries++ {
		p := lowestPickedPort + rand.IntN(room)
		if p >= lowestPickedPort+below {
			p = max(hi, lowestPickedPort-1) + 1 + (p - lowestPickedPort - below)
		}
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken: try another
		}
		take(l)
	}
	for tries := 0; len(ports) < n; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("freeport: pick a free loopback port: %w", err)
		}
		if handedOut.ports[l.Addr().(*net.TCPAddr).Port] && tries < 100 {
			ls = append(ls, l) // held until return, so ":0" gives another
			continue
		}
		take(l)
	}
	return ports, nil
}

// PortList is Ports(n) for a test; it fails the test when no port is free.
func PortList(tb testing.TB, n int) []int {
	tb.Helper()
	p, err := Ports(n)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Port is one port of PortList.
func Port(tb testing.TB) int {
	tb.Helper()
	return PortList(tb, 1)[0]
}

// Addr is "127.0.0.1:<Port>".
func Addr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(tb)))
}

// ephemeralRange reads the kernel's ephemeral port range; ok is false when
// it cannot be read.
func ephemeralRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	return parsePortRange(string(b))
}

// parsePortRange parses ip_local_port_range ("32768\t60999\n").
func parsePortRange(s string) (lo, hi int, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}
