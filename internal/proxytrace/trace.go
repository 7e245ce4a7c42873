// Package proxytrace records what happened to one proxied request so far:
// its S3 operation, the nodes its attempts went to, and why an attempt
// failed. The minio transport writes it; healthready (passive health) and
// the access log placeholders read it. It lives in the request's replacer,
// which every attempt of Caddy's proxy loop shares.
package proxytrace

import (
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
)

// replacerKey is where the trace lives in the request's replacer.
const replacerKey = "http.reverse_proxy.minio.trace"

// Failure says why an attempt did not produce the response the client got.
type Failure uint8

const (
	// NoFailure: the attempt's response went to the client (or is still
	// running).
	NoFailure Failure = iota
	// Error: a transport error (reset, EOF) other than a refused dial
	// (Unreachable) or a try_timeout (TimedOut).
	Error
	// Busy: the node refused the request as busy (429, 503 SlowDown or
	// ServerBusy) before reading its body. Busy is not dead: passive health
	// does not count it as a failure.
	Busy
	// ShuttingDown: the node answered that it is going away (503
	// "http: Server closed" or X-Minio-Server-Status: offline); the
	// transport has already taken it out of rotation.
	ShuttingDown
	// Cancelled: a hedged twin that lost, or a client that went away.
	Cancelled
	// Unreachable: the connection could not be made (refused, no route):
	// nothing of the request reached the node.
	Unreachable
	// TimedOut: the node did not answer within try_timeout. On MinIO that
	// is as often a lock held for a frozen peer (every node stalls on the
	// object) as a frozen node, so it is not a passive failure by itself:
	// the transport has the node probed at once instead.
	TimedOut
	// NotYetVisible: a node that rejoined a moment ago answered 404 to a
	// read; the read asked the next node (MinIO answers 404 for objects
	// on peers it has not reconnected to yet). Not a passive failure.
	NotYetVisible
)

// Attempt is one attempt of the request on one node.
type Attempt struct {
	Node    string // dial address host:port
	Failure Failure
	Hedge   bool // a hedged twin sent next to the attempt before it
}

// maxAttempts bounds the attempts kept (Caddy's lb_retries rarely exceeds
// a few; hedges add one per attempt at most).
const maxAttempts = 16

// Trace is the record of one request. It is created by the first attempt
// and read after each. A hedged twin runs next to its attempt, hence the
// lock.
type Trace struct {
	Op s3op.Op

	mu       sync.Mutex
	attempts [maxAttempts]Attempt
	n        int
}

// From returns the request's trace, or nil.
func From(r *http.Request) *Trace {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil
	}
	v, _ := repl.Get(replacerKey)
	t, _ := v.(*Trace)
	return t
}

// Ensure returns the request's trace, creating it with op if there is none.
// Without a replacer (outside Caddy's HTTP server) it returns a fresh trace
// that is not shared.
func Ensure(r *http.Request, op s3op.Op) *Trace {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil {
		if v, ok := repl.Get(replacerKey); ok {
			if t, ok := v.(*Trace); ok {
				return t
			}
		}
	}
	t := &Trace{Op: op}
	if repl != nil {
		repl.Set(replacerKey, t)
	}
	return t
}

// Add records a new attempt on node and returns its index.
func (t *Trace) Add(node string, hedge bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == maxAttempts {
		copy(t.attempts[:], t.attempts[1:])
		t.n--
	}
	t.attempts[t.n] = Attempt{Node: node, Hedge: hedge}
	t.n++
	return t.n - 1
}

// Fail sets the failure of attempt i.
func (t *Trace) Fail(i int, f Failure) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i >= 0 && i < t.n {
		t.attempts[i].Failure = f
	}
}

// Attempts appends the attempts, in order, to dst.
func (t *Trace) Attempts(dst []Attempt) []Attempt {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append(dst, t.attempts[:t.n]...)
}

// Len is the number of attempts so far.
func (t *Trace) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Tried reports whether an attempt already went to node.
func (t *Trace) Tried(node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < t.n; i++ {
		if t.attempts[i].Node == node {
			return true
		}
	}
	return false
}

// MayRetryOn reports whether a retry of the request may go to node: it was
// never tried, or its last attempt did not reach it or was refused because
// it was going away (the request was not processed; once the node is
// routable again, after a restart, it may serve it). A node that failed,
// timed out or was busy is not tried again.
func (t *Trace) MayRetryOn(node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := t.n - 1; i >= 0; i-- {
		if t.attempts[i].Node == node {
			f := t.attempts[i].Failure
			return f == ShuttingDown || f == Unreachable
		}
	}
	return true
}

// TimedOutOnce reports whether an attempt of the request already timed
// out: later attempts then wait without a try deadline, since the
// slowness may be the object's (a lock) and not one node's.
func (t *Trace) TimedOutOnce() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < t.n; i++ {
		if t.attempts[i].Failure == TimedOut {
			return true
		}
	}
	return false
}

// Primaries counts the attempts that were not hedged twins.
func (t *Trace) Primaries() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := 0; i < t.n; i++ {
		if !t.attempts[i].Hedge {
			n++
		}
	}
	return n
}

// LastFailure returns the failure recorded for the last attempt on node,
// or NoFailure.
func (t *Trace) LastFailure(node string) Failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := t.n - 1; i >= 0; i-- {
		if t.attempts[i].Node == node {
			return t.attempts[i].Failure
		}
	}
	return NoFailure
}
