package miniocluster

import (
	"fmt"
	"net"
)

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
