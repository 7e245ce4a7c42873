package miniotransport

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Body guard states.
const (
	bodyFresh   int32 = iota // nothing read yet: the body may still go to another node
	bodyReading              // the transport has started reading: this attempt owns the body
	bodySealed               // handed over: this attempt may never read it
)

// errBodyHandedOver fails a read of an attempt whose body was handed to
// the next attempt (it can only happen to an attempt that was abandoned).
var errBodyHandedOver = errors.New("request body was handed to another node")

// bodyGuard wraps the request body of one attempt. It knows whether the
// transport has read a single byte (then the request may never be sent
// again), lets the attempt hand the body over to the next one atomically
// (seal), waits for the node's 100 Continue before the first read when the
// client asked for it and a try deadline applies, and reports the end of
// the body (the start of the write deadline).
//
// Caddy wraps the same body in its own guard that keeps the body open
// unless bytes were read (bodyNopCloserIfNotRead), so a sealed attempt's
// Close never closes the client's body.
type bodyGuard struct {
	rc    io.ReadCloser
	state atomic.Int32

	// With wait100 set, the first read blocks until continue100 is closed
	// (the node said 100 Continue) or ctx is done (the try deadline passed
	// or the attempt was cancelled); a cancelled wait reads nothing.
	wait100   bool
	continue1 chan struct{}
	once100   sync.Once
	ctx       context.Context

	n atomic.Int64 // bytes read
}

func newBodyGuard(ctx context.Context, rc io.ReadCloser, wait100 bool) *bodyGuard {
	g := &bodyGuard{rc: rc, wait100: wait100, ctx: ctx}
	if wait100 {
		g.continue1 = make(chan struct{})
	}
	return g
}

// got100 records the node's 100 Continue.
func (g *bodyGuard) got100() {
	if g.continue1 != nil {
		g.once100.Do(func() { close(g.continue1) })
	}
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	switch g.state.Load() {
	case bodySealed:
		return 0, errBodyHandedOver
	case bodyFresh:
		if g.wait100 {
			select {
			case <-g.continue1:
			case <-g.ctx.Done():
				return 0, context.Cause(g.ctx)
			}
		}
		if !g.state.CompareAndSwap(bodyFresh, bodyReading) {
			return 0, errBodyHandedOver // sealed meanwhile
		}
	}
	n, err := g.rc.Read(p)
	g.n.Add(int64(n))
	return n, err
}

// seal hands the body over to the next attempt if this one never read a
// byte of it; false means the body is (partly) gone with this attempt.
func (g *bodyGuard) seal() bool {
	return g.state.CompareAndSwap(bodyFresh, bodySealed) || g.state.Load() == bodySealed
}

// read reports how many bytes the attempt read.
func (g *bodyGuard) read() int64 { return g.n.Load() }

// Close closes the body only if this attempt read from it; an unread body
// stays open for the next attempt.
func (g *bodyGuard) Close() error {
	if g.state.CompareAndSwap(bodyFresh, bodySealed) || g.state.Load() == bodySealed {
		return nil
	}
	return g.rc.Close()
}

// responseBody wraps a response body: it counts the bytes the client gets
// and ends the attempt (its context, its record) when the body is closed
// or read to its end, not when the response headers arrive, so a
// streaming response is never cut by the attempt's deadlines.
type responseBody struct {
	rc    io.ReadCloser
	n     atomic.Int64
	once  sync.Once
	done  func(bytesOut int64, err error)
	final error
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.final = err
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() { b.done(b.n.Load(), b.final) })
	return err
}
