package miniotransport

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// nodeSource is what the transport needs of the reverse_proxy's dynamic
// upstream source. healthready implements it; with any other source the
// transport still works, without hedges and without telling anyone about
// busy or departing nodes.
type nodeSource interface {
	// PoolName names the pool in metrics and on the status page.
	PoolName() string
	// RoutableNodes returns the dial addresses that may get traffic now,
	// in config order, without blocking.
	RoutableNodes() []string
	// NodeGoingAway takes node out of rotation at once: it answered that
	// it is shutting down or not initialised. Only probes bring it back.
	NodeGoingAway(node, reason string)
	// NodeBusy lowers node's share of new requests for a while: it refused
	// a request as busy (429, 503 SlowDown/ServerBusy). Busy is not dead.
	NodeBusy(node, reason string)
	// NodeCannotWrite says node answered 503 SlowDownWrite (no write
	// quorum in its own view): it is busy, and takes no write for a while.
	NodeCannotWrite(node, reason string)
	// CanWrite reports whether node may take writes now (see
	// NodeCannotWrite).
	CanWrite(node string) bool
	// NodeSlow says node did not answer an attempt within try_timeout: the
	// pool probes it at once and ejects it if the probe fails too (a
	// frozen node); a node that answers its probe stays (the attempt was
	// slow for another reason, such as a lock held for a frozen peer).
	NodeSlow(node, reason string)
	// Holds reports whether requests wait for a node when none is routable
	// (then a request refused by a departing node is worth retrying even
	// when no other node is routable now).
	Holds() bool
	// HoldFor is how long a request may wait for a node (the pool's hold);
	// the transport waits as long at most for a node that is not busy.
	HoldFor() time.Duration
	// JustRejoined reports whether node became routable again a moment
	// ago (after a restart, an ejection, a drain): its 404 to a read may
	// only mean it has not reconnected to its peers yet.
	JustRejoined(node string) bool
}

// nodeRanker is what the transport needs of the selection policy to send
// a hedge where a retry would go. session_affinity implements it.
type nodeRanker interface {
	// NextNode returns the best candidate for r by the policy's order that
	// skip does not reject, or "".
	NextNode(r *http.Request, candidates []string, skip func(node string) bool) string
}

// source returns the parent reverse_proxy's upstream source if it speaks
// nodeSource.
func (t *Transport) source() nodeSource {
	if t.parent == nil {
		return nil
	}
	s, _ := t.parent.DynamicUpstreams.(nodeSource)
	return s
}

// ranker returns the parent reverse_proxy's selection policy if it speaks
// nodeRanker.
func (t *Transport) ranker() nodeRanker {
	if t.parent == nil || t.parent.LoadBalancing == nil {
		return nil
	}
	r, _ := t.parent.LoadBalancing.SelectionPolicy.(nodeRanker)
	return r
}

// retriesLeft reports whether Caddy's proxy loop will make another attempt
// after attempts failed ones, judged from its lb_retries (lb_try_duration
// is checked by Caddy itself; with it alone, another attempt is assumed).
func (t *Transport) retriesLeft(attempts int) bool {
	if t.parent == nil || t.parent.LoadBalancing == nil {
		return false
	}
	lb := t.parent.LoadBalancing
	switch {
	case lb.Retries > 0:
		return attempts <= lb.Retries
	case lb.TryDuration > 0:
		return true
	}
	return false
}

// nextNode is where a hedge of r goes: the policy's next choice among the
// routable nodes this request has not tried, else the first such node in
// config order.
func (t *Transport) nextNode(r *http.Request, src nodeSource, tried func(string) bool) string {
	if src == nil {
		return ""
	}
	nodes := src.RoutableNodes()
	if rk := t.ranker(); rk != nil {
		return rk.NextNode(r, nodes, tried)
	}
	for _, n := range nodes {
		if !tried(n) {
			return n
		}
	}
	return ""
}

// Interface guard: healthready's source must keep satisfying the parts of
// Caddy's interface the transport relies on.
var _ reverseproxy.UpstreamSource = (nodeSourceUpstreams)(nil)

// nodeSourceUpstreams is a nodeSource that is also Caddy's upstream source
// (what healthready is); only used for the guard above.
type nodeSourceUpstreams interface {
	nodeSource
	reverseproxy.UpstreamSource
}

// rankedNodes lists the routable nodes in the order the selection policy
// would try them for r.
func (t *Transport) rankedNodes(r *http.Request, src nodeSource) []string {
	if src == nil {
		return nil
	}
	nodes := src.RoutableNodes()
	rk := t.ranker()
	if rk == nil {
		return nodes
	}
	out := make([]string, 0, len(nodes))
	picked := func(n string) bool {
		for _, p := range out {
			if p == n {
				return true
			}
		}
		return false
	}
	for range nodes {
		n := rk.NextNode(r, nodes, picked)
		if n == "" {
			break
		}
		out = append(out, n)
	}
	return out
}
