package miniocluster

import (
	"fmt"
	"net"
)

// FreePorts returns n distinct loopback ports that were free a moment ago:
// all n listeners are open at once (so the ports differ), then closed. Another
// process may still take one before MinIO binds it; Start retries on that.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("miniocluster: pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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
