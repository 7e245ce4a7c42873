package miniotransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

// Causes of an attempt's cancellation.
var (
	errTryTimeout  = errors.New("try_timeout passed")
	errHedgeWon    = errors.New("the hedged twin answered first")
	errHedgeLost   = errors.New("the first attempt answered first")
	errAttemptDone = errors.New("attempt finished")
	// errBusyEverywhere: every routable node refused the request as busy
	// before reading it; see busyEverywhereError.
	errBusyEverywhere = errors.New("every routable node is busy")
)

// timeoutError is the error of an attempt abandoned at a deadline. It is a
// net.Error with Timeout() true, so Caddy answers 504 when no retry is left,
// and it does not wrap context.Canceled, which Caddy would take for a client
// that went away.
type timeoutError struct {
	node  string
	after time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("node %s did not answer within try_timeout %v", e.node, e.after)
}
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// notVisibleWait bounds how long a read waits when the only node it can
// ask rejoined a moment ago and answered 404: long enough for a MinIO node
// to reconnect to its first peers after a whole-cluster restart (about a
// second was seen), short enough that a real 404 is not held for the whole
// hold.
const notVisibleWait = 5 * time.Second

// revisitPause is how long an attempt waits before it goes back to a node
// the same request already found unreachable or shutting down.
const revisitPause = 250 * time.Millisecond

// pause waits d unless ctx ends first (the client went away).
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// busyEverywhereError carries the last busy answer while the transport
// waits to try again.
type busyEverywhereError struct {
	last *http.Response
	l    *leg
	// maxWait bounds the waiting below the pool's hold (0: the hold).
	maxWait time.Duration
}

func (e *busyEverywhereError) Error() string { return errBusyEverywhere.Error() }
func (e *busyEverywhereError) Is(target error) bool {
	return target == errBusyEverywhere
}

// refusedError is a node's refusal that the transport turns into a retry
// on the next node.
type refusedError struct {
	node   string
	status int
	code   string
	kind   refusal
}

func (e *refusedError) Error() string {
	what := http.StatusText(e.status)
	if e.code != "" {
		what = e.code
	}
	return fmt.Sprintf("node %s refused the request before processing it (%d %s, %s); trying the next node", e.node, e.status, what, e.kind)
}

// RoundTrip sends one attempt of Caddy's proxy loop (and, for hedged reads,
// its twin) and turns MinIO's answers into what Caddy's loop understands:
// a response for the client, a retryable error (reverseproxy.DialError:
// nothing of the request was processed), or a plain error.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.SetScheme(req)
	node := req.URL.Host
	if di, ok := reverseproxy.GetDialInfo(req.Context()); ok {
		node = di.Address
	}
	op := s3op.Classify(req.Method, req.Host, req.URL.Path, req.URL.RawQuery, t.domains)
	tr := proxytrace.Ensure(req, op)
	src := t.source()
	pool := ""
	if src != nil {
		pool = src.PoolName()
	}
	st := t.requestStateOf(req, pool, op)
	if !tr.MayRetryOn(node) {
		// Caddy's policy chose a node this request already failed on (a
		// policy that does not read the trace: first, random, least_conn).
		// A retry goes to another node whenever one is routable.
		for _, n := range t.rankedNodes(req, src) {
			if tr.MayRetryOn(n) {
				node = n
				req = redirect(req, node)
				break
			}
		}
	}
	if tr.Tried(node) {
		// A node this request was sent to already (it went away or could
		// not be reached, and may be restarting): a routable node the
		// request has not tried goes first.
		for _, n := range t.rankedNodes(req, src) {
			if !tr.Tried(n) && tr.MayRetryOn(n) {
				node = n
				req = redirect(req, node)
				break
			}
		}
	}
	if src != nil && !isRead(req) && !src.CanWrite(node) {
		// The node answered 503 SlowDownWrite a moment ago: a write it
		// refuses may delete a small object's previous version on the
		// drives it reached (see healthready's NodeCannotWrite). The
		// write goes to the next node of its key's order that can write;
		// with none, to its own node.
		if n := t.nextNode(req, src, func(n string) bool { return !src.CanWrite(n) || !tr.MayRetryOn(n) || tr.Tried(n) }); n != "" {
			node = n
			req = redirect(req, node)
		}
	}
	if src != nil && src.Holds() && tr.Tried(node) {
		// Every routable node already failed this request. Their
		// ejection reaches the pool a moment later; a retry sent at once
		// spent Caddy's lb_retries in milliseconds (seen: 5 attempts on
		// one node within 30 ms as a whole-cluster restart began, then
		// 502). Pause, so that the node can come back or the pool's hold
		// take over.
		if err := pause(req.Context(), revisitPause); err != nil {
			return nil, err
		}
	}
	read := isRead(req)
	measure := false
	if read && t.hedging && src != nil && hedgeable(op) && t.slowFactor > 0 && tr.Len() == 0 {
		var alt string
		if alt, measure = t.avoidSlow(req, tr, src, node); alt != "" {
			if repl, ok := req.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				repl.Set(traffic.PlaceholderAvoidedNode, node)
			}
			node = alt
			req = redirect(req, node)
		}
	}
	if t.replayable(req, st) {
		if err := st.readReplay(req); err != nil {
			return nil, err
		}
	}
	idx := tr.Add(node, false)

	hedge := read && t.hedging && src != nil && hedgeable(op) && !measure
	var backoff busyBackoff
	for {
		var resp *http.Response
		var err error
		if hedge {
			resp, err = t.hedged(req, tr, src, st, node, idx)
		} else {
			l := t.newLeg(req, st, node, false, read, read && quickFirstByte(op), !tr.TimedOutOnce())
			resp, err = l.roundTrip()
			if measure && err == nil {
				t.observeLatency(node, time.Since(l.start)) // a slow node, measured
			}
			resp, err = t.finish(req, tr, src, l, idx, resp, err)
		}
		if !errors.Is(err, errBusyEverywhere) {
			return resp, err
		}
		// Every routable node refused the request as busy before reading
		// it (or answered a read 404 a moment after it rejoined). MinIO
		// asks to slow down: wait, on the client's behalf, and try the
		// best node again (nothing of the request was read), as long as
		// the pool would hold a request.
		var be *busyEverywhereError
		errors.As(err, &be)
		next, ok := backoff.wait(req.Context(), src, t.rankedNodes(req, src), be.maxWait)
		if !ok {
			return t.deliver(be.l, be.last), nil
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(be.last.Body, maxPeek))
		_ = be.last.Body.Close()
		be.l.cancel(errAttemptDone)
		st.finished(be.l.rec, true, be.l.bytesIn(), n)
		node = next
		req = redirect(req, node)
		idx = tr.Add(node, false)
	}
}

// redirect is req sent to another node: the URL host and the dial address
// Caddy's HTTP transport dials. The body is shared: it was never read.
func redirect(req *http.Request, node string) *http.Request {
	r := req.Clone(req.Context())
	r.Body = req.Body
	r.URL.Host = node
	host, port, _ := net.SplitHostPort(node)
	ctx := context.WithValue(r.Context(), dialInfoKey, reverseproxy.DialInfo{Network: "tcp", Address: node, Host: host, Port: port})
	if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.reverse_proxy.upstream.hostport", node)
	}
	return r.WithContext(ctx)
}

// isRead reports whether r is a read: GET, HEAD or OPTIONS without a body.
// Reads are idempotent: they may be hedged and get the try deadline.
func isRead(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return !hasBody(r)
	}
	return false
}

// quickFirstByte reports whether a node answers the first byte of a read
// of this class quickly when it is healthy, so that try_timeout may abandon
// it. A listing computes its whole page first and may take seconds on a big
// bucket on any node; retrying it elsewhere would only repeat the work, so
// listings are bounded by response_header_timeout alone.
func quickFirstByte(op s3op.Op) bool {
	switch op {
	case s3op.ListObjects, s3op.ListUploads, s3op.ListBuckets, s3op.Other:
		return false
	}
	return true
}

// hedgeable reports whether a read of this class may be hedged: object
// reads, whose twin costs the cluster little and whose tail matters most.
func hedgeable(op s3op.Op) bool {
	return op == s3op.GetObject || op == s3op.HeadObject
}

// hasBody reports whether r carries a request body. Caddy hands even a GET
// a (wrapped, empty) body; the length says whether there is one.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// leg is one request to one node: the attempt itself, or a hedged twin.
type leg struct {
	t      *Transport
	req    *http.Request
	node   string
	read   bool
	replay bool // the body is the request's, read in full (replay_body): it can go again
	start  time.Time
	ctx    context.Context
	cancel context.CancelCauseFunc
	guard  *bodyGuard // nil without a request body
	st     *requestState
	rec    *attemptRec

	mu      sync.Mutex
	timer   *time.Timer // nil once the deadline no longer applies (100 Continue)
	stopped bool        // the response headers arrived: no deadline applies any more
	fired   bool        // the deadline cancelled the leg
}

// testHookResponseHead, when set by a test, runs after the node's response
// headers arrived and before the leg's deadline is stopped: the moment a
// deadline passing at the same time must not cut the response.
var testHookResponseHead func()

// newLeg prepares req for node with its deadline: a read (with
// readDeadline: see quickFirstByte) gets try_timeout until the first
// response byte; an upload with Expect: 100-continue gets
// try_timeout until the node says 100 Continue (its body waits for it, so a
// node that never answers gets nothing and the request may go elsewhere).
func (t *Transport) newLeg(req *http.Request, st *requestState, node string, hedge, read, readDeadline, tryDeadline bool) *leg {
	l := &leg{t: t, node: node, read: read, start: time.Now(), st: st}
	l.rec = st.begin(node, hedge)
	ctx, cancel := context.WithCancelCause(req.Context())
	l.ctx, l.cancel = ctx, cancel
	try := time.Duration(t.TryTimeout)
	if !tryDeadline {
		// An earlier attempt of this request timed out already: the
		// slowness may be the object's, so this one waits.
		try = 0
	}
	body := hasBody(req)
	expect := body && strings.EqualFold(req.Header.Get("Expect"), "100-continue")
	if body && !expect && !t.NoExpect && req.Header.Get("Expect") == "" {
		// Ask the node before streaming the body (see NoExpect). The
		// header map is Caddy's copy for this request, not the client's.
		req.Header.Set("Expect", "100-continue")
		expect = true
	}
	if body {
		rc := req.Body
		if r := st.replayReader(); r != nil {
			rc, l.replay = r, true
		}
		l.guard = newBodyGuard(ctx, rc, expect && try > 0)
		if expect {
			// Got1xxResponse, not Got100Continue: Go reports the latter only
			// while it waits for the 100 itself (expect_continue_timeout > 0).
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: l.got1xx})
		}
	}
	if try > 0 && (readDeadline || expect) {
		l.arm(try, errTryTimeout)
	}
	l.req = req.WithContext(ctx)
	if l.guard != nil {
		l.req.Body = l.guard
	}
	return l
}

// arm starts the leg's deadline. The deadline cancels the leg only while
// it applies, under the leg's lock: headers that arrive as it passes are
// either taken before it fires (disarm) or abandoned with the leg (the
// cancel closed their connection, so their body could not be read to its
// end: seen as a GET cut after its 200 when a stalled node answered a
// burst of reads at try_timeout).
func (l *leg) arm(d time.Duration, cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(d, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.stopped || l.timer != timer {
			return
		}
		l.fired = true
		l.cancel(cause)
	})
	l.timer = timer
}

// disarm stops the deadline for good: the response has started. It
// reports whether the deadline had cancelled the leg already.
func (l *leg) disarm() (fired bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
	}
	return l.fired
}

// got1xx: on 100 Continue the node is alive and reads the body; the try
// deadline ends (Caddy's response_header_timeout takes over at the end of
// the body).
func (l *leg) got1xx(code int, _ textproto.MIMEHeader) error {
	if code != http.StatusContinue {
		return nil
	}
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.mu.Unlock()
	l.guard.got100()
	return nil
}

// roundTrip sends the leg through Caddy's HTTP transport.
func (l *leg) roundTrip() (*http.Response, error) {
	resp, err := l.t.HTTPTransport.RoundTrip(l.req)
	if testHookResponseHead != nil && err == nil {
		testHookResponseHead()
	}
	if l.disarm() && err == nil {
		// The deadline passed as the headers arrived and its cancel broke
		// the body: the answer is abandoned as a timeout (a read goes to
		// the next node), never handed to the client half-read.
		_ = resp.Body.Close()
		resp, err = nil, context.Cause(l.ctx)
	}
	if err != nil {
		return nil, l.explain(err)
	}
	l.st.response(l.rec, resp.StatusCode)
	return resp, nil
}

// bytesIn is how much of the request body the node was sent.
func (l *leg) bytesIn() int64 {
	if l.guard == nil {
		return 0
	}
	return l.guard.read()
}

// explain replaces the error of an attempt the transport cancelled by what
// happened; any other error is returned as is.
func (l *leg) explain(err error) error {
	switch context.Cause(l.ctx) {
	case errTryTimeout:
		return &timeoutError{node: l.node, after: time.Duration(l.t.TryTimeout)}
	case errHedgeWon, errHedgeLost:
		return context.Cause(l.ctx)
	}
	return err
}

// finish turns one leg's outcome into what RoundTrip returns.
func (t *Transport) finish(req *http.Request, tr *proxytrace.Trace, src nodeSource, l *leg, idx int, resp *http.Response, err error) (*http.Response, error) {
	if err != nil {
		l.cancel(errAttemptDone)
		if req.Context().Err() != nil {
			tr.Fail(idx, proxytrace.Cancelled)
			l.st.cancelled(l.rec, l.bytesIn(), 0)
			return nil, err // the client went away: Caddy answers 499
		}
		l.st.finished(l.rec, true, l.bytesIn(), 0)
		var de reverseproxy.DialError
		var te *timeoutError
		switch {
		case errors.As(err, &de):
			tr.Fail(idx, proxytrace.Unreachable)
		case errors.As(err, &te):
			tr.Fail(idx, proxytrace.TimedOut)
			if src != nil {
				src.NodeSlow(l.node, te.Error())
			}
		default:
			tr.Fail(idx, proxytrace.Error)
		}
		if l.guard != nil && !t.NoRetryUnsent && ((l.replay && !timedOut(err)) || l.guard.seal()) {
			// Not one byte of the body went to the node, or the body was
			// read in full and the node's connection broke (replay_body; a
			// node that timed out may still be writing it): the request
			// may go to the next node whatever its method.
			return nil, reverseproxy.NewDialError(err)
		}
		return nil, err
	}

	if resp.StatusCode == http.StatusNotFound && l.read && src != nil && !t.NoRetryUnsent &&
		src.JustRejoined(l.node) && t.worthRetry(tr, src, refusedBusy) {
		// A node that rejoined a moment ago answers 404 for objects it
		// cannot see yet (MinIO reconnects to its peers' drives after it
		// answers ready): the read asks the key's next node, whose answer
		// goes to the client, 404 or not.
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxPeek))
		_ = resp.Body.Close()
		tr.Fail(idx, proxytrace.NotYetVisible)
		l.cancel(errAttemptDone)
		l.st.finished(l.rec, true, l.bytesIn(), n)
		return nil, reverseproxy.NewDialError(fmt.Errorf("node %s rejoined a moment ago and answered 404: asking the next node", l.node))
	}
	if resp.StatusCode == http.StatusNotFound && l.read && src != nil && !t.NoRetryUnsent &&
		src.JustRejoined(l.node) && src.Holds() {
		// No other node to ask: the others are still out (after a
		// whole-cluster restart the first node back answered 404 for
		// objects that exist, for about a second). Ask it again shortly,
		// for at most notVisibleWait; then its 404 is the answer.
		tr.Fail(idx, proxytrace.NotYetVisible)
		return nil, &busyEverywhereError{last: resp, l: l, maxWait: notVisibleWait}
	}
	ref, code := notRefused, ""
	refusalStatus := resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == statusClientClosed && req.Context().Err() == nil)
	if refusalStatus || resp.Header.Get(minioStatusHeader) != "" {
		ref, code = classify(resp)
	}
	if ref != notRefused && src != nil {
		reason := fmt.Sprintf("answered %d %s", resp.StatusCode, firstNonEmpty(code, http.StatusText(resp.StatusCode)))
		if ref == refusedGoingAway {
			tr.Fail(idx, proxytrace.ShuttingDown)
			l.rec.node.ShuttingDown()
			src.NodeGoingAway(l.node, reason)
		} else {
			tr.Fail(idx, proxytrace.Busy)
			l.rec.node.Busy()
			if code == "SlowDownWrite" {
				src.NodeCannotWrite(l.node, reason)
			} else {
				src.NodeBusy(l.node, reason)
			}
		}
	}
	if ref != notRefused && !t.NoRetryUnsent {
		retry := t.worthRetry(tr, src, ref)
		// Busy everywhere: no other node to go to, but the pool holds
		// requests, so the transport waits and tries again itself.
		holdBusy := !retry && ref == refusedBusy && src != nil && src.Holds()
		if retry || holdBusy {
			unsent := l.read || l.replay || (l.guard != nil && l.guard.seal()) || (l.guard == nil && ref.beforeHandler(resp.StatusCode, code))
			if unsent {
				if holdBusy {
					// Keep the answer: it goes to the client if the wait
					// runs out.
					return nil, &busyEverywhereError{last: resp, l: l}
				}
				n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxPeek))
				_ = resp.Body.Close()
				l.cancel(errAttemptDone)
				l.st.finished(l.rec, true, l.bytesIn(), n)
				return nil, reverseproxy.NewDialError(&refusedError{node: l.node, status: resp.StatusCode, code: code, kind: ref})
			}
		}
	}
	if ref == notRefused {
		tr.Fail(idx, proxytrace.NoFailure)
	}
	return t.deliver(l, resp), nil
}

// deliver hands resp to Caddy: the attempt ends when its body is read or
// closed, not when its head arrived.
func (t *Transport) deliver(l *leg, resp *http.Response) *http.Response {
	resp.Body = &responseBody{rc: resp.Body, done: func(out int64, err error) {
		l.cancel(errAttemptDone)
		l.st.finished(l.rec, err != nil, l.bytesIn(), out)
	}}
	return resp
}

// busyBackoff paces the retries of a request that every routable node
// refused as busy: 250 ms, doubling up to 2 s, for at most the pool's hold.
// The last pause is cut to what is left of the hold, so the last try is
// made when the hold ends, not up to 2 s before it: after a whole-cluster
// restart MinIO refuses writes until its nodes have reconnected to each
// other, and that moment is what the held requests wait for (seen: a
// backlog of PUTs gave up 0.5 s before MinIO took writes again).
type busyBackoff struct {
	start time.Time
	n     int
}

func (b *busyBackoff) wait(ctx context.Context, src nodeSource, ranked []string, maxWait time.Duration) (string, bool) {
	if b.start.IsZero() {
		b.start = time.Now()
	}
	if len(ranked) == 0 || src == nil {
		return "", false
	}
	// Each round goes to the next node of the key's order: the first
	// node to take writes again gets the request.
	next := ranked[b.n%len(ranked)]
	limit := src.HoldFor()
	if maxWait > 0 && maxWait < limit {
		limit = maxWait
	}
	left := limit - time.Since(b.start)
	if left <= 0 {
		return "", false
	}
	d := min(250*time.Millisecond<<min(b.n, 3), 2*time.Second, left) // 250 ms << 3 is 2 s: no overflow on a long hold
	b.n++
	if pause(ctx, d) != nil {
		return "", false
	}
	return next, true
}

// worthRetry reports whether a refused request should go on: Caddy will
// make another attempt, and there is a node to make it on (one not tried
// yet, or, for a departing node with hold on, the node that comes back).
func (t *Transport) worthRetry(tr *proxytrace.Trace, src nodeSource, ref refusal) bool {
	if !t.retriesLeft(tr.Primaries()) {
		return false
	}
	if src == nil {
		return true
	}
	for _, n := range src.RoutableNodes() {
		if tr.MayRetryOn(n) {
			return true
		}
	}
	return ref == refusedGoingAway && src.Holds()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
