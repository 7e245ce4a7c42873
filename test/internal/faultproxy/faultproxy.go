// Package faultproxy puts a misbehaving network in front of one address, on
// loopback, for tests and benchmarks: a TCP proxy whose behaviour is
// switched at run time while connections are open.
//
//	p := faultproxy.StartT(t, node.S3Addr())  // listens on 127.0.0.1:<free port>
//	p.SetBandwidth(100 << 20)                 // 100 MiB/s each direction, shared by all connections (a NIC)
//	p.SetLatency(2 * time.Millisecond)        // added before every forwarded chunk
//	p.SetFrozen(true)                         // stop forwarding, hold connections (a hung node)
//	p.SetRefusing(true)                       // new connections refused (ECONNREFUSED), open ones kept
//	p.ResetConns()                            // reset every open connection (RST)
//	p.Pass()                                  // back to plain forwarding
//	st := p.Stats()                           // connections and bytes each way
//
// The knobs combine (a capped, slow link; a capped link that freezes).
// Bandwidth is a token bucket per direction shared by every connection of
// the proxy, as a node's network interface is. Latency is added per
// forwarded chunk (at most ChunkSize bytes), i.e. per read on the other
// side. Frozen stops forwarding after the chunk in hand: the peers see a
// connection that stays open and silent, and TCP flow control stops the
// senders. Refusing closes the listener (a dial gets ECONNREFUSED) and
// binds the same port again when switched off.
//
// HTTPProxy (StartHTTP) is the HTTP-level sibling: a reverse proxy that
// forwards each request unchanged and can delay every response or answer
// 429/503 itself, as a busy MinIO node does.
//
// Loopback only: the listener is on 127.0.0.1 and the target must be a
// loopback address. Every goroutine ends when its connection or the proxy
// closes; every wait is bounded by Close.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ChunkSize is the largest piece forwarded at once (one read).
const ChunkSize = 32 << 10

// Stats are the proxy's counters since Start. The byte counts include
// every byte a peer has received; they may run ahead of the peer by the
// chunk being written.
type Stats struct {
	Accepted        int64 // connections accepted
	Active          int64 // connections open now
	BytesToTarget   int64 // client -> target
	BytesFromTarget int64 // target -> client
}

// Proxy is a TCP proxy in front of one target address.
type Proxy struct {
	target string

	mu       sync.Mutex
	ln       net.Listener
	addr     string
	refusing bool
	closed   bool
	conns    map[*pair]struct{}
	frozen   bool
	unfreeze chan struct{} // closed when unfrozen; replaced when frozen again

	latency atomic.Int64 // time.Duration
	up      *bucket      // client -> target
	down    *bucket      // target -> client

	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	accepted, active, toTarget, fromTarget atomic.Int64
}

// pair is one proxied connection: the client side and the target side.
type pair struct{ client, target net.Conn }

// Start listens on a free loopback port and forwards every connection to
// target, which must be a loopback host:port.
func Start(target string) (*Proxy, error) {
	if err := checkLoopback(target); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		target:   target,
		ln:       ln,
		addr:     ln.Addr().String(),
		conns:    make(map[*pair]struct{}),
		unfreeze: make(chan struct{}),
		up:       newBucket(),
		down:     newBucket(),
		done:     make(chan struct{}),
	}
	close(p.unfreeze) // not frozen
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// StartT is Start for tests: it fails the test on error and closes the
// proxy when the test ends.
func StartT(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := Start(target)
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// checkLoopback accepts host:port with a loopback IP or "localhost".
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("faultproxy: target %q: %v", addr, err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return fmt.Errorf("faultproxy: target %q: port %q is not a number", addr, port)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("faultproxy: target %q: only loopback addresses are allowed", addr)
	}
	return nil
}

// Addr is the proxy's listening address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.addr }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetBandwidth caps each direction at bytesPerSec, shared by every
// connection; 0 or less removes the cap. Bursts are at most ChunkSize
// bytes or 1/50 s of the rate, whichever is larger.
func (p *Proxy) SetBandwidth(bytesPerSec int64) {
	p.up.setRate(bytesPerSec)
	p.down.setRate(bytesPerSec)
}

// SetLatency adds d before every forwarded chunk, both directions; 0
// removes it.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(max(d, 0))) }

// SetFrozen stops (true) or resumes (false) forwarding on every
// connection, open or new; connections stay open.
func (p *Proxy) SetFrozen(frozen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if frozen == p.frozen {
		return
	}
	p.frozen = frozen
	if frozen {
		p.unfreeze = make(chan struct{})
	} else {
		close(p.unfreeze)
	}
}

// SetRefusing closes the listener (true): new connections are refused,
// open ones are kept. false binds the same port again; it fails if another
// process took the port meanwhile.
func (p *Proxy) SetRefusing(refusing bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	if refusing == p.refusing {
		return nil
	}
	if refusing {
		p.refusing = true
		return p.ln.Close()
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faultproxy: listening on %s again: %w", p.addr, err)
	}
	p.ln, p.refusing = ln, false
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// ResetConns resets every open connection (both sides get RST) and
// returns how many there were.
func (p *Proxy) ResetConns() int {
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		pairs = append(pairs, c)
	}
	p.mu.Unlock()
	for _, c := range pairs {
		resetConn(c.client)
		resetConn(c.target)
	}
	return len(pairs)
}

// Pass switches every knob off: no cap, no latency, not frozen, not
// refusing.
func (p *Proxy) Pass() error {
	p.SetBandwidth(0)
	p.SetLatency(0)
	p.SetFrozen(false)
	return p.SetRefusing(false)
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted: p.accepted.Load(), Active: p.active.Load(),
		BytesToTarget: p.toTarget.Load(), BytesFromTarget: p.fromTarget.Load(),
	}
}

// Close stops listening, closes every connection and waits for every
// goroutine of the proxy.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	if !p.refusing {
		_ = p.ln.Close()
	}
	for c := range p.conns {
		_ = c.client.Close()
		_ = c.target.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed (Close or SetRefusing)
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target and forwards both ways until either side ends.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	target, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		// The target is down: the client sees its connection reset,
		// as behind a proxy that cannot reach its backend.
		resetConn(client)
		return
	}
	c := &pair{client: client, target: target}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = client.Close()
		_ = target.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	p.active.Add(1)
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		p.active.Add(-1)
	}()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.forward(target, client, p.up, &p.toTarget) }()
	go func() { defer wg.Done(); p.forward(client, target, p.down, &p.fromTarget) }()
	wg.Wait()
	_ = client.Close()
	_ = target.Close()
}

// forward copies src to dst chunk by chunk, applying freeze, latency and
// the bandwidth bucket before each write. When src ends, dst's write side
// is closed (half-close), so the other direction can finish.
func (p *Proxy) forward(dst, src net.Conn, b *bucket, counter *atomic.Int64) {
	buf := make([]byte, ChunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitUnfrozen() {
				return
			}
			if d := time.Duration(p.latency.Load()); d > 0 && !p.sleep(d) {
				return
			}
			if !b.take(n, p.done) {
				return
			}
			// Counted before the write: a peer that has read these
			// bytes must find them in Stats (counted after, a test that
			// checked Stats right after its round trip could miss the
			// last chunk).
			counter.Add(int64(n))
			if w, werr := dst.Write(buf[:n]); werr != nil {
				counter.Add(int64(w - n)) // what did not go out
				_ = src.Close()
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite()
			} else {
				_ = dst.Close()
			}
			return
		}
	}
}

// waitUnfrozen blocks while the proxy is frozen; false when it closes.
func (p *Proxy) waitUnfrozen() bool {
	p.mu.Lock()
	ch := p.unfreeze
	p.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-p.done:
		return false
	}
}

// sleep waits d; false when the proxy closes first.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// resetConn closes c so that the peer gets a RST rather than a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// bucket is a token bucket of bytes shared by the connections of one
// direction. rate 0 means unlimited.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket() *bucket { return &bucket{} }

func (b *bucket) setRate(bytesPerSec int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bytesPerSec <= 0 {
		b.rate = 0
		return
	}
	b.rate = float64(bytesPerSec)
	b.burst = max(float64(ChunkSize), b.rate/50)
	b.tokens = min(b.tokens, b.burst)
	b.last = time.Now()
}

// take waits until n bytes may pass; false when done closes first. A
// chunk larger than the burst is let through once the bucket is full and
// drives it into debt, so the long-run rate holds for any chunk size.
func (b *bucket) take(n int, done <-chan struct{}) bool {
	for {
		b.mu.Lock()
		if b.rate == 0 {
			b.mu.Unlock()
			return true
		}
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		need := min(float64(n), b.burst)
		if b.tokens >= need {
			b.tokens -= float64(n)
			b.mu.Unlock()
			return true
		}
		wait := time.Duration((need - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(max(wait, 100*time.Microsecond))
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return false
		}
	}
}
