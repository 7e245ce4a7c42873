package miniotransport

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

// requestState records the attempts of one proxied request into the
// per-node traffic statistics. An attempt's outcome is only known once
// the next attempt starts (then it was retried elsewhere) or the request
// ends (then its answer, or its failure, was the client's): each attempt
// is ended in internal/traffic at that moment, which follows the attempt's
// own end by microseconds.
type requestState struct {
	mu       sync.Mutex
	pool     string
	op       s3op.Op
	attempts []*attemptRec
	repl     *caddy.Replacer
	retried  string // the retried_nodes placeholder so far
	// replay is a PUT body read in full before its first attempt
	// (replay_body); every attempt sends it from the start.
	replay []byte
}

// attemptRec is one attempt on one node.
type attemptRec struct {
	node     *traffic.Node
	name     string
	hedge    bool
	start    time.Time
	ttfb     time.Duration
	status   int
	bytesIn  int64
	bytesOut int64
	failed   bool // an error, or a refusal turned into a retry
	done     bool // the attempt finished (body closed or error)
	recorded bool // End was called
}

// stateKey is where the request's state lives in its replacer.
const stateKey = "http.reverse_proxy.minio.state"

// requestStateOf returns the request's state, creating it on the first
// attempt; the state records the request's last attempts when the request
// ends.
func (t *Transport) requestStateOf(req *http.Request, pool string, op s3op.Op) *requestState {
	repl, _ := req.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil {
		if v, ok := repl.Get(stateKey); ok {
			if st, ok := v.(*requestState); ok {
				return st
			}
		}
	}
	st := &requestState{pool: pool, op: op, repl: repl}
	if repl != nil {
		repl.Set(stateKey, st)
		repl.Set(traffic.PlaceholderOp, op)
	}
	// The request's context ends when Caddy's handler returned.
	context.AfterFunc(req.Context(), st.finish)
	return st
}

// begin starts an attempt on node. A primary attempt ends every earlier
// finished attempt as retried (the request went on to this node); a hedge
// does not.
func (st *requestState) begin(node string, hedge bool) *attemptRec {
	n := traffic.For(st.pool, node)
	a := &attemptRec{node: n, name: node, hedge: hedge, start: time.Now()}
	n.Begin()
	st.mu.Lock()
	defer st.mu.Unlock()
	if !hedge {
		for _, p := range st.attempts {
			if p.done && !p.recorded {
				st.end(p, traffic.Retried)
				p.node.Retry(n)
			}
		}
	}
	st.attempts = append(st.attempts, a)
	if st.repl != nil {
		switch {
		case len(st.attempts) == 1:
			st.repl.Set(traffic.PlaceholderFirstNode, node)
		case hedge:
			st.repl.Set(traffic.PlaceholderHedgedNode, node)
		default:
			if st.retried != "" {
				st.retried += ","
			}
			st.retried += node
			st.repl.Set(traffic.PlaceholderRetriedNodes, st.retried)
		}
		st.repl.Set(traffic.PlaceholderAttempts, len(st.attempts))
	}
	return a
}

// response records the head of a's response.
func (st *requestState) response(a *attemptRec, status int) {
	st.mu.Lock()
	a.status, a.ttfb = status, time.Since(a.start)
	st.mu.Unlock()
}

// finished marks a done: failed says whether it failed (an error, or a
// refusal sent on as a retry). Its outcome comes with the next attempt or
// the request's end.
func (st *requestState) finished(a *attemptRec, failed bool, bytesIn, bytesOut int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a.done, a.failed = true, failed
	a.bytesIn, a.bytesOut = bytesIn, bytesOut
	if st.repl != nil && !a.hedge {
		outcome := traffic.OK
		if failed {
			outcome = traffic.Failed
		}
		st.repl.Set(traffic.PlaceholderOutcome, outcome.String())
	}
}

// cancelled ends a at once: a hedge loser, or a client that went away.
func (st *requestState) cancelled(a *attemptRec, bytesIn, bytesOut int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a.done, a.bytesIn, a.bytesOut = true, bytesIn, bytesOut
	st.end(a, traffic.Cancelled)
}

// finish runs when the request ended: its last attempts were the answer
// (OK) or the client's error (Failed); one still running lost its client.
func (st *requestState) finish() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, a := range st.attempts {
		switch {
		case a.recorded:
		case !a.done:
			st.end(a, traffic.Cancelled)
		case a.failed:
			st.end(a, traffic.Failed)
		default:
			st.end(a, traffic.OK)
		}
	}
}

// end records a once; called under st.mu.
func (st *requestState) end(a *attemptRec, o traffic.Outcome) {
	if a.recorded {
		return
	}
	a.recorded = true
	a.node.End(st.op, a.status, a.ttfb, o, a.bytesIn, a.bytesOut)
}
