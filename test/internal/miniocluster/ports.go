package miniocluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowestPickedPort is the bottom of the range FreePorts picks from: above
// the ports services usually own.
const lowestPickedPort = 20000

// FreePorts returns n distinct loopback ports that were free a moment ago:
// all n listeners are open at once (so the ports differ), then closed.
//
// The ports are picked outside the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), at random. A port the kernel
// hands out with ":0" comes from that range, and so do the source ports of
// every outgoing connection; a cluster's nodes open many connections to
// each other, and one of them took a port picked that way before Caddy
// could bind it (a flaky "address already in use"). Outside the range only
// another listener can take it. When the range leaves no room, it falls
// back to ":0".
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	lo, hi, ok := ephemeralRange()
	// ports lowestPickedPort..lo-1 and hi+1..65535, numbered 0..room-1
	below := max(lo-lowestPickedPort, 0)
	room := below + max(65535-max(hi, lowestPickedPort-1), 0)
	for tries := 0; ok && room > 0 && len(ports) < n && tries < 50*n; tries++ {
		p := lowestPickedPort + rand.IntN(room)
		if p >= lowestPickedPort+below {
			p = max(hi, lowestPickedPort-1) + 1 + (p - lowestPickedPort - below)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken (or just picked): try another
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("miniocluster: pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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

// checkPortsFree fails with a clear message when a fixed port is taken
// (e.g. a demo still running on 9101).
func checkPortsFree(ports []int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("miniocluster: port 127.0.0.1:%d is in use (another demo or cluster still running?): %w", p, err)
		}
		l.Close()
	}
	return nil
}
