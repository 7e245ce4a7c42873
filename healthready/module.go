// Package healthready gives Caddy's reverse_proxy MinIO-aware active and
// passive health: the dynamic upstream source
// `http.reverse_proxy.upstreams.healthready` returns only the MinIO nodes
// that are routable (ready, or not probed yet), and the handler
// `http.handlers.healthready_status` shows the state of every pool (text,
// JSON, HTML, and a readiness answer for keepalived or an outer load
// balancer).
package healthready

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
)

func init() {
	caddy.RegisterModule(new(HealthReady))
}

// Defaults of HealthReady: a probe every 3s with a 1s timeout, and three
// results in a row to change a node's state, so a node that stops
// answering is out after three failed probes (some 10s; a failed attempt
// on real traffic ejects it at once) and back after three good ones; at
// most 10 probes in flight per pool.
const (
	defaultPath          = "/minio/health/ready"
	defaultInterval      = 3 * time.Second
	defaultTimeout       = time.Second
	defaultRise          = 3
	defaultFall          = 3
	defaultConcurrency   = 10
	defaultExpect        = http.StatusOK
	defaultPassiveFails  = 1
	defaultPassiveWindow = 30 * time.Second
	defaultMinReady      = 1
	defaultHold          = 15 * time.Second
	defaultHoldMax       = 1000
	defaultBusyWindow    = 5 * time.Second
)

// HealthReady is a dynamic upstream source that probes every MinIO node's
// readiness endpoint and returns only the routable nodes (ready, or not
// probed yet), in config order, so that it composes with every lb_policy.
// A node is ready when the probe answers the expected status (200)
// without an X-Minio-Server-Status header (a starting MinIO answers 200
// with `X-Minio-Server-Status: offline`).
//
// Failed attempts on real traffic eject a node at once (passive health):
// Caddy calls ResetCache right after a failed attempt it is going to retry,
// so passive ejection needs lb_retries or lb_try_duration. An ejected node
// returns only after `rise` consecutive good probes that started after the
// ejection. A node that answers that it is going away (MinIO's shutdown
// answer, not initialised) is ejected at once, whatever passive_fails says.
// A busy node (429, 503 SlowDown/ServerBusy, a busy readiness answer) stays
// routable with half its share of new requests for busy_window. A drained
// node (the admin API) gets no new requests.
//
// When no node is routable (a whole-cluster restart), new requests wait
// (hold) until one is, probes run every 100 ms and one good probe makes a
// node routable; a request whose hold ends without a node routes nowhere
// (503). When fewer than min_ready nodes are routable (but some are, or
// holding is off), all configured upstreams are returned (fail-open).
//
// Probe loops are shared per probe target by every site and survive config
// reloads; so does passive ejection state (per dial address).
type HealthReady struct {
	// The dial addresses (host:port) of the MinIO nodes, in order.
	Upstreams []string `json:"upstreams,omitempty"`

	// The path probed on each node. Default: /minio/health/ready.
	// Use /minio/health/live for liveness only.
	Path string `json:"path,omitempty"`

	// The probe method, GET or HEAD. Default: GET.
	Method string `json:"method,omitempty"`

	// Probe this port on each upstream's host instead of the upstream's own
	// port (the console site probes the S3 API port of the same node).
	// Mutually exclusive with probe_to. Default: the upstream's own port.
	Port int `json:"port,omitempty"`

	// One explicit probe address (host:port) per upstream, in the order of
	// upstreams. Mutually exclusive with port. Default: none (the
	// upstream's own address).
	ProbeTo []string `json:"probe_to,omitempty"`

	// The probe scheme, http or https. Default: http.
	Scheme string `json:"scheme,omitempty"`

	// With scheme https: do not verify the node's certificate.
	// Default: false (verify).
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`

	// With scheme https: the server name (SNI) the certificate is checked
	// against. Default: the probe address's host.
	TLSServerName string `json:"tls_server_name,omitempty"`

	// The Host header of probe requests. Default: the probe address.
	Host string `json:"host,omitempty"`

	// Extra headers of probe requests. Default: none.
	Headers http.Header `json:"headers,omitempty"`

	// Time between two probes of one target (jittered by ±10%; the first
	// probe runs at once). Default: 3s.
	Interval caddy.Duration `json:"interval,omitempty"`

	// Time a probe may take (dial, TLS, answer). Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Consecutive good probes that make a not_ready (or passively ejected)
	// node ready again. Default: 3.
	Rise int `json:"rise,omitempty"`

	// Consecutive failed probes that make a ready node not_ready. Default: 3.
	// From the initial unknown state a single probe decides.
	Fall int `json:"fall,omitempty"`

	// Maximum probes in flight at once among the probe loops this pool
	// starts. Default: 10.
	Concurrency int `json:"concurrency,omitempty"`

	// The status a ready node answers. Default: 200.
	ExpectStatus int `json:"expect_status,omitempty"`

	// Optional cluster quorum gate: "write" probes /minio/health/cluster,
	// "read" probes /minio/health/cluster/read, once per interval on one
	// ready node. A lost quorum (503) shows in the status page, metrics and
	// logs and turns the readiness answer to 503; routing is unchanged.
	// Default: off.
	Cluster string `json:"cluster,omitempty"`

	// Failed attempts on real traffic within passive_window that eject a
	// node. Default: 1. -1 disables passive ejection.
	PassiveFails int `json:"passive_fails,omitempty"`

	// The window of passive_fails. Default: 30s.
	PassiveWindow caddy.Duration `json:"passive_window,omitempty"`

	// Below this many routable nodes the pool fails open: every configured
	// upstream is returned, so the site does not answer 503 for everything.
	// With no routable node at all and hold on, the hold replaces it. 0
	// never fails open. Default: 1.
	MinReady *int `json:"min_ready,omitempty"`

	// How long a request waits for a routable node when the pool has none
	// (every node restarting at once, as MinIO upgrades do). Nothing of the
	// request has been read, so uploads wait too. 0 turns holding off.
	// Default: 15s.
	Hold *caddy.Duration `json:"hold,omitempty"`

	// The most requests held at once; more are answered at once (503
	// SlowDown). Default: 1000.
	HoldMax int `json:"hold_max,omitempty"`

	// How long a node that said it is busy keeps a reduced share (half) of
	// new requests after its last busy answer, and a node that answered
	// 503 SlowDownWrite takes no writes (see NodeCannotWrite). Default: 5s.
	BusyWindow caddy.Duration `json:"busy_window,omitempty"`

	// The pool's name on the status page and in metrics. Default: the
	// upstream list joined with commas.
	Name string `json:"name,omitempty"`

	logger    *zap.Logger
	failedKey string // replacer key: nodes this request failed on (ResetCache)
	events    eventEmitter

	nodes  []*node
	byAddr map[string]*node // normalised dial host:port → node
	snap   atomic.Pointer[snapshot]
	sem    chan struct{}
	gate   *clusterGate
	seq    uint64

	kickCh    chan struct{}
	ctx       context.Context // done once Cleanup starts: stops the pool's goroutines
	stop      context.CancelFunc
	wg        sync.WaitGroup
	cleanOnce sync.Once

	evalMu        sync.Mutex
	failOpen      bool
	failOpenSince time.Time
	urgent        bool      // the pool has no routable node: its probes run fast
	nextWake      time.Time // when a busy period ends and the pool evaluates again

	minReady int           // MinReady with its default
	hold     time.Duration // Hold with its default
	holds    holdState
}

// node is one configured upstream of a pool.
type node struct {
	dial    string // as configured
	addr    string // normalised host:port, as Caddy's {upstream.hostport}
	spec    probeSpec
	probe   *prober
	passive *passiveState

	// guarded by HealthReady.evalMu
	state  nodeState
	since  time.Time
	reason string

	// rejoined: when the node last became routable again after it was
	// out (unix nanos; 0: routable since the pool began). See JustRejoined.
	rejoined atomic.Int64
	// noWriteUntil: until when the node takes no writes (unix nanos): it
	// answered 503 SlowDownWrite. See NodeCannotWrite.
	noWriteUntil atomic.Int64
}

// snapshot is the routable set, rebuilt on change only.
type snapshot struct {
	dials    []string // routable dial addresses in config order (all while failing open)
	busy     []bool   // per dials entry: the node is busy (half share)
	routable int      // routable nodes (not counting fail-open)
	nodes    []string // routable dial addresses, never the fail-open set
	failOpen bool
	changed  chan struct{} // closed when a newer snapshot replaces this one
}

// CaddyModule returns the Caddy module information.
func (*HealthReady) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.healthready",
		New: func() caddy.Module { return new(HealthReady) },
	}
}

// applyDefaults fills in every unset field.
func (h *HealthReady) applyDefaults() {
	if h.Path == "" {
		h.Path = defaultPath
	}
	h.Method = strings.ToUpper(h.Method)
	if h.Method == "" {
		h.Method = http.MethodGet
	}
	h.Scheme = strings.ToLower(h.Scheme)
	if h.Scheme == "" {
		h.Scheme = "http"
	}
	if h.Interval == 0 {
		h.Interval = caddy.Duration(defaultInterval)
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(defaultTimeout)
	}
	if h.Rise == 0 {
		h.Rise = defaultRise
	}
	if h.Fall == 0 {
		h.Fall = defaultFall
	}
	if h.Concurrency == 0 {
		h.Concurrency = defaultConcurrency
	}
	if h.ExpectStatus == 0 {
		h.ExpectStatus = defaultExpect
	}
	h.Cluster = strings.ToLower(h.Cluster)
	if h.Cluster == "off" {
		h.Cluster = ""
	}
	if h.PassiveFails == 0 {
		h.PassiveFails = defaultPassiveFails
	}
	if h.PassiveWindow == 0 {
		h.PassiveWindow = caddy.Duration(defaultPassiveWindow)
	}
	h.minReady = defaultMinReady
	if h.MinReady != nil {
		h.minReady = *h.MinReady
	}
	h.hold = defaultHold
	if h.Hold != nil {
		h.hold = time.Duration(*h.Hold)
	}
	if h.HoldMax == 0 {
		h.HoldMax = defaultHoldMax
	}
	if h.BusyWindow == 0 {
		h.BusyWindow = caddy.Duration(defaultBusyWindow)
	}
	if h.Name == "" {
		h.Name = strings.Join(h.Upstreams, ",")
	}
}

// Provision validates the config, joins (or starts) the shared probe loops
// and passive states, and builds the first snapshot.
func (h *HealthReady) Provision(ctx caddy.Context) error {
	if h.logger == nil { // a logger set before (tests observing the logs) is kept
		h.logger = ctx.Logger()
	}
	if err := h.Validate(); err != nil {
		return err
	}
	h.applyDefaults()
	h.events = loadEvents(ctx, h.logger)
	h.failedKey = "http.reverse_proxy.healthready." + h.Name + ".failed"
	h.warnWithoutRetries(ctx)

	h.sem = make(chan struct{}, h.Concurrency)
	h.kickCh = make(chan struct{}, 1)
	h.ctx, h.stop = context.WithCancel(context.Background())
	h.byAddr = make(map[string]*node, len(h.Upstreams))
	headerKey := canonicalHeaders(h.Headers)
	for i, dial := range h.Upstreams {
		addr, host, err := splitDial(dial)
		if err != nil {
			return fmt.Errorf("upstreams[%d] %q: %v", i, dial, err)
		}
		probeAddr := addr
		switch {
		case len(h.ProbeTo) > 0:
			probeAddr = h.ProbeTo[i]
		case h.Port > 0:
			probeAddr = joinHostPort(host, h.Port)
		}
		n := &node{
			dial: dial,
			addr: addr,
			spec: probeSpec{
				Scheme: h.Scheme, Addr: probeAddr, Path: h.Path, Method: h.Method,
				Host: h.Host, Headers: headerKey,
				Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout),
				Rise: h.Rise, Fall: h.Fall, Expect: h.ExpectStatus,
				TLSInsecure: h.TLSInsecureSkipVerify, TLSServerName: h.TLSServerName,
			},
		}
		p, err := acquireProber(n.spec, h.Headers.Clone(), h.sem)
		if err != nil {
			return err
		}
		n.probe = p
		n.passive = acquirePassive(addr)
		h.nodes = append(h.nodes, n)
		h.byAddr[addr] = n
	}
	for _, n := range h.nodes {
		n.probe.subscribe(h)
		n.passive.subscribe(h)
	}
	h.evaluate(true)

	h.wg.Go(h.loop)
	if h.Cluster != "" {
		h.gate = newClusterGate(h)
		h.wg.Go(func() { h.gate.run(h.ctx) })
	}
	registerPool(h)
	registerMetrics(ctx, h.logger)
	h.logger.Debug("healthready pool provisioned",
		zap.String("pool", h.Name), zap.Strings("upstreams", h.Upstreams),
		zap.String("path", h.Path), zap.Duration("interval", time.Duration(h.Interval)))
	return nil
}

// warnWithoutRetries warns when the parent reverse_proxy never retries:
// Caddy tells a dynamic source about a failed attempt only before a retry.
func (h *HealthReady) warnWithoutRetries(ctx caddy.Context) {
	if h.PassiveFails < 0 {
		return
	}
	for _, m := range ctx.Modules() {
		rp, ok := m.(*reverseproxy.Handler)
		if !ok {
			continue
		}
		if rp.LoadBalancing == nil || (rp.LoadBalancing.Retries == 0 && rp.LoadBalancing.TryDuration == 0) {
			h.logger.Warn("reverse_proxy has neither lb_retries nor lb_try_duration: passive ejection only sees failures that Caddy retries",
				zap.String("pool", h.Name))
		}
		return
	}
}

// GetUpstreams returns the routable upstreams in config order (or all of
// them while failing open). With no routable node it first holds the
// request until one is (see hold.go). A busy node is left out of half the
// calls (at random), which halves its share of new requests; with
// session_affinity its keys go to their next node meanwhile. A retry keeps
// the busy nodes when it has no other node left (retryHasNodeNotBusy).
//
// They are new Upstream values on every call: Caddy provisions what this
// returns on each request (it writes Host, the circuit breaker and the
// passive policy into them), so values shared between requests in flight
// would race, as Caddy's own dynamic sources learned (caddy#5736). Two
// allocations per request; the per-node state lives in Caddy's global
// dynamic host table, keyed by the dial address.
func (h *HealthReady) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	snap := h.snap.Load()
	if snap.routable == 0 && h.hold > 0 && r != nil {
		snap = h.waitForNode(r, snap)
	}
	dials, busy := snap.dials, snap.busy
	failed := h.retryLeavesOut(r, dials)
	skipBusy := false
	if n := countFalse(busy); n > 0 && n < len(busy) {
		// Only when a node that is not busy remains to take the request.
		// A coin per call, not a turn: a request retried after a busy
		// refusal calls again, and a strict alternation would then show
		// the busy node to every first attempt.
		skipBusy = rand.Uint64()&1 == 0 && retryHasNodeNotBusy(r, dials, busy)
	}
	vals := make([]reverseproxy.Upstream, len(dials))
	ups := make([]*reverseproxy.Upstream, 0, len(dials))
	for i, d := range dials {
		if skipBusy && busy[i] || slices.Contains(failed, d) {
			continue
		}
		vals[i].Dial = d
		ups = append(ups, &vals[i])
	}
	return ups, nil
}

// retryLeavesOut lists the nodes a retry through Caddy's own transport
// leaves out: those the request failed on, as long as another routable
// node remains, as nginx's proxy_next_upstream goes to the next server.
// Caddy's selection policies (least_conn, round_robin, random, first) do
// not know which node an attempt failed on and can pick it again for
// every retry (seen: the console site's GET got 502 when all three of its
// attempts went to a node whose console was not listening yet, right
// after the node's S3 API became ready). A first attempt leaves nothing
// out. The minio transport's requests keep every node here: the transport
// itself sends a retry to a node the request has not tried yet
// (proxytrace.MayRetryOn), and session_affinity continues with the next
// node of the key's order.
func (h *HealthReady) retryLeavesOut(r *http.Request, dials []string) []string {
	if !isRetry(r) || proxytrace.From(r) != nil {
		return nil
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	failed := h.failedOn(repl)
	if len(failed) == 0 {
		return nil
	}
	for _, d := range dials {
		if !slices.Contains(failed, d) {
			return failed
		}
	}
	return nil // failed on every routable node: any of them may be retried
}

// retryHasNodeNotBusy reports whether r may still go to a node that is not
// busy: always on a first attempt; on a retry, only if the minio
// transport's trace shows such a node the request may retry on. Without
// that node, leaving the busy nodes out would leave the retry only nodes it
// already failed on: the selection policy finds none, and Caddy spends a
// retry on each empty pick at once (seen: a HEAD that failed on the one
// node not busy after a whole-cluster restart got 502 when all six of its
// retries found no upstream, within 6 ms). Without a trace nothing says
// what a retry tried, so it keeps every node.
func retryHasNodeNotBusy(r *http.Request, dials []string, busy []bool) bool {
	if !isRetry(r) {
		return true
	}
	tr := proxytrace.From(r)
	if tr == nil {
		return false
	}
	for i, d := range dials {
		if !busy[i] && tr.MayRetryOn(d) {
			return true
		}
	}
	return false
}

// isRetry reports whether GetUpstreams is asked for a retry: Caddy sets
// the URL's host when it sends an attempt, so on a first attempt it is
// still empty.
func isRetry(r *http.Request) bool {
	return r != nil && r.URL != nil && r.URL.Host != ""
}

func countFalse(bs []bool) int {
	n := 0
	for _, b := range bs {
		if !b {
			n++
		}
	}
	return n
}

// kick asks the pool's goroutine to re-evaluate; it never blocks.
func (h *HealthReady) kick() {
	select {
	case h.kickCh <- struct{}{}:
	default:
	}
}

// loop re-evaluates the pool whenever it is kicked (a probe result, an
// ejection by another pool), until Cleanup.
func (h *HealthReady) loop() {
	defer recoverPanic(h.logger, "pool loop panicked, node states are no longer updated", zap.String("pool", h.Name))
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.kickCh:
			h.reevaluate()
		}
	}
}

// reevaluate is one evaluation of the loop. A panic in it is logged and
// the loop goes on: the next probe result kicks it again, and a pool
// whose routable set froze would keep routing on stale health.
func (h *HealthReady) reevaluate() {
	defer recoverPanic(h.logger, "evaluating node states panicked", zap.String("pool", h.Name))
	h.evaluate(false)
}

// Cleanup releases the shared probe loops and passive states; a loop stops
// when its last user is gone.
func (h *HealthReady) Cleanup() error {
	h.cleanOnce.Do(func() {
		unregisterPool(h)
		if h.stop != nil {
			h.stop()
		}
		h.wg.Wait()
		h.evalMu.Lock()
		if h.urgent {
			h.urgent = false
			for _, n := range h.nodes {
				n.probe.setUrgent(false)
			}
		}
		h.evalMu.Unlock()
		for _, n := range h.nodes {
			n.probe.unsubscribe(h)
			releaseProber(n.spec)
			n.passive.unsubscribe(h)
			releasePassive(n.addr)
		}
	})
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*HealthReady)(nil)
	_ caddy.Validator                    = (*HealthReady)(nil)
	_ caddy.CleanerUpper                 = (*HealthReady)(nil)
	_ reverseproxy.CachingUpstreamSource = (*HealthReady)(nil)
)
