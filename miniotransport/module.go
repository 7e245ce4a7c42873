// Package miniotransport provides the reverse_proxy transport `minio`:
// Caddy's own HTTP transport (every option of `transport http`) plus what a
// MinIO cluster needs on the request path. It sees every attempt Caddy's
// proxy loop makes and
//
//   - abandons a read whose node has not answered within try_timeout, and an
//     upload whose node has not said 100 Continue within it, so Caddy
//     retries it on the next node (writes whose body was sent are bounded by
//     Caddy's own response_header_timeout, which starts at the end of the
//     body, and are never resent);
//   - hedges reads (GET, HEAD): when the first node has not answered after
//     the hedge delay, the same request goes to the next node of the key's
//     order and the first answer wins, within a budget;
//   - retries a request that a node refused before reading a byte of its
//     body (MinIO shutting down, busy, or not answering 100 Continue), on the
//     next node, streaming, never sending a body twice;
//   - tells healthready at once when a node says it is going away, and when
//     it is busy (busy is not dead: its share drops for a while);
//   - records per-node traffic (S3 operation, status, first-byte latency,
//     bytes, retries, hedges) for metrics, the status page and the access
//     log.
package miniotransport

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
)

func init() {
	caddy.RegisterModule(Transport{})
}

// Defaults of Transport.
const (
	defaultHedgeBudget    = 0.05
	defaultHedgeMin       = 10 * time.Millisecond
	defaultHedgeQuantile  = 0.95
	hedgeAdaptive         = "adaptive"
	hedgeOff              = "off"
	defaultBusyRetryAfter = time.Second
	// defaultExpectContinue replaces Caddy's http transport default of 0
	// (send the body at once) for expect_continue_timeout.
	defaultExpectContinue = time.Second
)

// Transport is Caddy's HTTP transport with MinIO-aware attempts. Every
// option of `transport http` applies unchanged (it is embedded), except
// that expect_continue_timeout defaults to 1s instead of 0: S3 clients send
// Expect: 100-continue with uploads, and waiting for the node's verdict
// before streaming the body lets a refused upload go to another node
// untouched. The options below are added.
type Transport struct {
	reverseproxy.HTTPTransport

	// How long one attempt may wait for a first sign of life from the node:
	// for reads (GET, HEAD, OPTIONS without a body) the first byte of the
	// response, for uploads sent with Expect: 100-continue the node's 100
	// Continue (the body waits for it). When it passes, the attempt is
	// abandoned and the node is probed at once (ejected if the probe fails
	// too); a read goes on through Caddy's retries (lb_retries,
	// lb_retry_match), an upload whose body was not sent goes on whatever
	// its method. A request is abandoned at most once: its next attempt
	// waits. A response that has started is
	// never cut. Writes whose body was sent are bounded by Caddy's own
	// response_header_timeout (from the end of the body) and never resent.
	// Default: 0 (off).
	TryTimeout caddy.Duration `json:"try_timeout,omitempty"`

	// Hedged reads: "off", a fixed delay (e.g. "50ms"), or "adaptive":
	// the hedge_quantile of the pool's recent first-byte latencies of reads,
	// at least hedge_min. When a GET or HEAD without a body has not answered
	// after the delay, the same request is sent to the next node of its key's
	// order; the first response wins, the other is cancelled. Default: off.
	Hedge string `json:"hedge,omitempty"`

	// Adaptive hedging: the quantile of recent read first-byte latencies
	// used as the delay. Default: 0.95.
	HedgeQuantile float64 `json:"hedge_quantile,omitempty"`

	// Adaptive hedging: the smallest delay. Default: 10ms.
	HedgeMin caddy.Duration `json:"hedge_min,omitempty"`

	// The most hedges as a fraction of reads (a token bucket: each read
	// earns hedge_budget tokens, a hedge spends one, at most 10 saved).
	// Default: 0.05 (5%).
	HedgeBudget float64 `json:"hedge_budget,omitempty"`

	// Reads avoid a slow node: when a node's median first byte of reads is
	// over slow_factor times the median of the pool's nodes (and at least
	// 50ms more), a read whose key picks it first goes to the key's next
	// node; one read in 64 still goes to it, unhedged, to see when it is
	// fast again.
	// Writes keep their node. Needs hedging (its latencies are the ones
	// hedged reads measure) and at least three nodes with recent reads.
	// -1 turns it off. Default: 4.
	SlowFactor float64 `json:"slow_factor,omitempty"`

	// PUT bodies of at most this many bytes (with a known length) are read
	// in full before the first attempt, so that a node that refuses the
	// upload after reading it (503 SlowDownWrite, shutting down) or whose
	// connection breaks (not a timeout: the node may still be writing)
	// passes it to the next node with the whole body,
	// like nginx's proxy_request_buffering. Larger and chunked bodies
	// stream and are never resent. Memory: at most this much per PUT in
	// flight. -1 turns it off. Default: 262144 (256 KiB).
	ReplayBody int64 `json:"replay_body,omitempty"`

	// Do not retry requests that a node refused before reading their body
	// (busy, shutting down, no 100 Continue). Default: false (retry them).
	NoRetryUnsent bool `json:"no_retry_unsent,omitempty"`

	// Do not add `Expect: 100-continue` to uploads whose client did not
	// send it. By default the transport asks the node before streaming any
	// upload body, so that an upload the node refuses before reading it
	// (shutting down, busy, 503 SlowDownWrite while it rejoins) can go to
	// another node whole; it costs one round trip to the node per upload.
	// The header is not signed by such clients, so SigV4 still verifies.
	// Default: false (add it).
	NoExpect bool `json:"no_expect,omitempty"`

	// S3 endpoint domains of virtual-host style requests
	// (`<bucket>.<domain>`), used to tell bucket from object requests in the
	// per-operation metrics. Default: none (path style).
	Domains []string `json:"domains,omitempty"`

	hedgeDelay time.Duration // fixed hedge delay; 0 with adaptive or off
	adaptive   bool
	hedging    bool
	domains    []string // ".domain", lower case
	parent     *reverseproxy.Handler
	budget     *tokenBucket
	latencies  *latencyWindow
	slowFactor float64 // 0: off
	replayBody int64   // 0: off
	slowState  *slowState
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.minio",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision sets up Caddy's HTTP transport and the MinIO-aware parts, and
// remembers the reverse_proxy handler it belongs to: its upstream source
// and selection policy name the next node for hedges and retries.
func (t *Transport) Provision(ctx caddy.Context) error {
	t.logger = ctx.Logger()
	if err := t.Validate(); err != nil {
		return err
	}
	if t.ExpectContinueTimeout == 0 {
		// S3 clients send Expect: 100-continue with uploads; waiting for
		// the node's verdict before streaming the body is what lets a
		// refused upload go to another node untouched.
		t.ExpectContinueTimeout = caddy.Duration(defaultExpectContinue)
	}
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	for _, m := range ctx.Modules() {
		if h, ok := m.(*reverseproxy.Handler); ok {
			t.parent = h
		}
	}
	switch t.Hedge {
	case "", hedgeOff:
	case hedgeAdaptive:
		t.adaptive, t.hedging = true, true
	default:
		d, _ := caddy.ParseDuration(t.Hedge) // checked by Validate
		t.hedgeDelay, t.hedging = d, true
	}
	if t.HedgeQuantile == 0 {
		t.HedgeQuantile = defaultHedgeQuantile
	}
	if t.HedgeMin == 0 {
		t.HedgeMin = caddy.Duration(defaultHedgeMin)
	}
	if t.HedgeBudget == 0 {
		t.HedgeBudget = defaultHedgeBudget
	}
	switch {
	case t.SlowFactor == 0:
		t.slowFactor = defaultSlowFactor
	case t.SlowFactor > 0:
		t.slowFactor = t.SlowFactor
	}
	switch {
	case t.ReplayBody == 0:
		t.replayBody = defaultReplayBody
	case t.ReplayBody > 0:
		t.replayBody = t.ReplayBody
	}
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		// healthready registers them too; with another upstream source the
		// transport's own records still reach /metrics.
		if err := traffic.Register(reg); err != nil {
			t.logger.Warn("registering traffic metrics", zap.Error(err))
		}
	}
	t.budget = newTokenBucket(t.HedgeBudget, 10)
	t.latencies = newLatencyWindow(10 * time.Second)
	t.slowState = new(slowState)
	t.domains = normalizeDomains(t.Domains)
	return nil
}

// Validate checks the options added to Caddy's HTTP transport; each error
// names the option and the value. It runs on a config before defaults are
// applied (zero means default).
func (t *Transport) Validate() error {
	if t.TryTimeout < 0 {
		return fmt.Errorf("try_timeout %v: must not be negative", time.Duration(t.TryTimeout))
	}
	switch t.Hedge {
	case "", hedgeOff, hedgeAdaptive:
	default:
		d, err := caddy.ParseDuration(t.Hedge)
		if err != nil || d <= 0 {
			return fmt.Errorf("hedge %q: want off, adaptive or a positive duration", t.Hedge)
		}
		if t.TryTimeout > 0 && d >= time.Duration(t.TryTimeout) {
			return fmt.Errorf("hedge %q: must be shorter than try_timeout %v", t.Hedge, time.Duration(t.TryTimeout))
		}
	}
	if t.HedgeQuantile != 0 && (t.HedgeQuantile < 0.5 || t.HedgeQuantile >= 1) {
		return fmt.Errorf("hedge_quantile %v: must be in [0.5, 1)", t.HedgeQuantile)
	}
	if t.HedgeMin < 0 {
		return fmt.Errorf("hedge_min %v: must not be negative", time.Duration(t.HedgeMin))
	}
	if t.HedgeBudget != 0 && (t.HedgeBudget < 0 || t.HedgeBudget > 1) {
		return fmt.Errorf("hedge_budget %v: must be a fraction in (0, 1]", t.HedgeBudget)
	}
	if t.SlowFactor != 0 && t.SlowFactor != -1 && t.SlowFactor <= 1 {
		return fmt.Errorf("slow_factor %v: want a factor over 1, or -1 for off", t.SlowFactor)
	}
	if t.ReplayBody < -1 {
		return fmt.Errorf("replay_body %d: want a size in bytes, or -1 for off", t.ReplayBody)
	}
	for i, d := range t.Domains {
		if d == "" || d == "." {
			return fmt.Errorf("domains[%d] %q: empty domain", i, d)
		}
	}
	return nil
}

// Cleanup releases Caddy's HTTP transport.
func (t *Transport) Cleanup() error { return t.HTTPTransport.Cleanup() }

// Interface guards
var (
	_ caddy.Provisioner                      = (*Transport)(nil)
	_ caddy.Validator                        = (*Transport)(nil)
	_ caddy.CleanerUpper                     = (*Transport)(nil)
	_ reverseproxy.TLSTransport              = (*Transport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport = (*Transport)(nil)
)
