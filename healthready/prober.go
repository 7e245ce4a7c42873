package healthready

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// probeState is the state of one probe target, as the active probes see it.
type probeState uint8

const (
	// stateUnknown: no probe has finished yet (the node is routable
	// meanwhile: see nodeUnknown).
	stateUnknown probeState = iota
	stateReady
	stateNotReady
)

func (s probeState) String() string {
	switch s {
	case stateReady:
		return "ready"
	case stateNotReady:
		return "not_ready"
	default:
		return "unknown"
	}
}

// minioStatusHeader is set by a MinIO node whose object layer is not
// initialised yet; such a node answers 200 but cannot serve.
const minioStatusHeader = "X-Minio-Server-Status"

// probeSpec identifies one probe loop. It is a comparable value: it is the
// key of the package-level usage pool, so every site (and every config
// generation across reloads) naming the same target shares one loop.
type probeSpec struct {
	Scheme        string
	Addr          string // host:port
	Path          string
	Method        string
	Host          string
	Headers       string // canonical "Name: value\n" lines, sorted
	Interval      time.Duration
	Timeout       time.Duration
	Rise, Fall    int
	Expect        int
	TLSInsecure   bool
	TLSServerName string
}

// canonicalHeaders renders h in a stable form for probeSpec.Headers.
func canonicalHeaders(h http.Header) string {
	if len(h) == 0 {
		return ""
	}
	lines := make([]string, 0, len(h))
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, http.CanonicalHeaderKey(k)+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// fastInterval is the probe interval while a pool using the target has no
// routable node (requests are held until one is).
const fastInterval = 100 * time.Millisecond

// probeResult is what one probe saw.
type probeResult struct {
	Start        time.Time
	Latency      time.Duration
	Status       int
	ServerStatus string // X-Minio-Server-Status, if any
	Busy         bool   // 503 with MinIO's ServerBusy: the request queue is full
	Quorum       int    // the quorum check's status while the target is not ready (0: not asked)
	QuorumPeer   string // a ready peer that sees write quorum while this node does not
	Peers        int    // an undrained node's maintenance check status (0: not asked)
	PeersPeer    string // a ready peer whose maintenance check passed while this node's did not
	Err          string
	OK           bool
}

// reason describes a result for logs and the status page.
func (r probeResult) reason() string {
	switch {
	case r.Err != "":
		return "error: " + r.Err
	case r.ServerStatus != "":
		return "status " + strconv.Itoa(r.Status) + ", " + minioStatusHeader + ": " + r.ServerStatus
	case r.PeersPeer != "":
		return "status " + strconv.Itoa(r.Status) + ", but " + maintenancePath + " answered " + strconv.Itoa(r.Peers) + " while " + r.PeersPeer + "'s answered 200 (not reconnected to every peer yet)"
	case r.QuorumPeer != "":
		return "status " + strconv.Itoa(r.Status) + ", but " + quorumPath + " answered " + strconv.Itoa(r.Quorum) + " while " + r.QuorumPeer + " sees write quorum (not rejoined yet)"
	case r.Quorum != 0 && r.Quorum != http.StatusOK && !r.OK:
		return "status " + strconv.Itoa(r.Status) + ", but " + quorumPath + " answered " + strconv.Itoa(r.Quorum) + " (no write quorum yet)"
	case r.Quorum != 0 && r.Quorum != http.StatusOK:
		return "status " + strconv.Itoa(r.Status) + "; no ready node sees write quorum (" + quorumPath + " " + strconv.Itoa(r.Quorum) + "), ready for reads"
	case r.Status != 0:
		return "status " + strconv.Itoa(r.Status)
	}
	return ""
}

// probeSnapshot is a copy of a prober's state for readers.
type probeSnapshot struct {
	State       probeState
	Since       time.Time
	Passes      int
	Fails       int
	Last        probeResult
	Probes      uint64
	Offline     uint64
	HasResult   bool
	LastBusy    time.Time // the last busy answer (zero: none)
	histCounts  []uint64
	histSum     float64
	histSamples uint64
}

// probeBuckets are the upper bounds (seconds) of the probe latency histogram.
var probeBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// prober runs the probe loop of one target and keeps its state machine.
// It is shared through probers (a caddy.UsagePool); Destruct stops it.
type prober struct {
	spec   probeSpec
	url    string
	header http.Header
	client *http.Client
	sem    chan struct{} // bounds probes in flight; shared by the loops a pool started
	// logger returns the logger for a panic in the loop (loopLogger; a
	// test hook).
	logger func() *zap.Logger

	// urgent counts the pools using the target where no node can take
	// requests (none routable, or every routable one busy): while any does,
	// probes run every fastInterval and one pass (with write quorum) makes
	// the target ready. wake interrupts the wait for the next probe.
	urgent atomic.Int32
	wake   chan struct{}

	stop    chan struct{}
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	stopped sync.Once

	mu         sync.Mutex
	state      probeState
	since      time.Time
	passes     int
	fails      int
	last       probeResult
	hasResult  bool
	probes     uint64
	offline    uint64      // probes answered with X-Minio-Server-Status
	lastBusy   time.Time   // the last busy answer
	passStarts []time.Time // start times of the latest consecutive passes (ring of size rise)
	// noQuorumSince: the first of the current run of quorum checks that
	// failed while no node was routable (zero: none). Only the probe loop
	// touches it.
	noQuorumSince time.Time
	// peersSince: when an undrain asked for the peer check (unix nanos;
	// 0: none). See requirePeers.
	peersSince atomic.Int64
	passNext   int
	histCounts []uint64
	histSum    float64
	histN      uint64
	subs       map[*HealthReady]struct{}
}

func newProber(spec probeSpec, header http.Header, sem chan struct{}) *prober {
	dialer := &net.Dialer{Timeout: spec.Timeout}
	tr := &http.Transport{
		// A probe must see the node as a new client would: a fresh
		// connection each time, never a pooled one that outlived a restart.
		DisableKeepAlives:     true,
		DialContext:           dialer.DialContext,
		ResponseHeaderTimeout: spec.Timeout,
		TLSHandshakeTimeout:   spec.Timeout,
		MaxIdleConns:          1,
	}
	if spec.Scheme == "https" {
		tr.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: spec.TLSInsecure, //nolint:gosec // operator's choice
			ServerName:         spec.TLSServerName,
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{
		spec:   spec,
		url:    spec.Scheme + "://" + spec.Addr + spec.Path,
		header: header,
		client: &http.Client{
			Transport: tr,
			Timeout:   spec.Timeout,
			// A redirect is an answer of its own, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sem:        sem,
		logger:     loopLogger,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		ctx:        ctx,
		cancel:     cancel,
		since:      time.Now(),
		passStarts: make([]time.Time, spec.Rise),
		histCounts: make([]uint64, len(probeBuckets)),
		subs:       make(map[*HealthReady]struct{}),
	}
	return p
}

// start launches the loop; the first probe runs at once.
func (p *prober) start() { go p.run() }

// Destruct stops the loop and waits for it; called by the usage pool when
// the last user released the target.
func (p *prober) Destruct() error {
	p.stopped.Do(func() {
		close(p.stop)
		p.cancel()
	})
	<-p.done
	p.client.CloseIdleConnections()
	return nil
}

func (p *prober) run() {
	defer close(p.done)
	defer recoverPanic(p.logger(), "probe loop panicked, the target is no longer probed", zap.String("target", p.url))
	p.probe()
	for {
		// ±10% jitter so that many proxies (or many targets) do not probe
		// a cluster in lockstep.
		d := p.spec.Interval
		if p.urgent.Load() > 0 {
			d = min(d, fastInterval)
		}
		if j := int64(d) / 5; j > 0 {
			d += time.Duration(rand.Int64N(j) - j/2)
		}
		t := time.NewTimer(d)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-p.wake:
			t.Stop()
		case <-t.C:
		}
		p.probe()
	}
}

// probe runs one probe. A panic in it is logged and the loop goes on at
// the next interval: a node's health checks must not stop over one bad
// probe. The probe's result is lost, which leaves the node's state as it
// was rather than calling a node down for a fault of this code.
func (p *prober) probe() {
	defer recoverPanic(p.logger(), "probe panicked", zap.String("target", p.url))
	p.probeOnce()
}

func (p *prober) probeOnce() {
	if p.sem != nil {
		select {
		case p.sem <- struct{}{}:
			defer func() { <-p.sem }()
		case <-p.stop:
			return
		}
	}
	res := p.do()
	if res.OK && p.needsQuorum() {
		p.checkQuorum(&res)
	} else if res.OK {
		p.noQuorumSince = time.Time{} // a ready node: a later outage starts afresh
	}
	if since := p.peersSince.Load(); res.OK && since != 0 {
		p.checkPeers(&res, since)
	}
	select {
	case <-p.stop:
		return // a probe cut short by shutdown says nothing about the node
	default:
	}
	p.record(res)
}

// quorumPath answers 200 only while the node's erasure sets have write
// quorum as the node sees them (MinIO's ClusterCheckHandler).
const quorumPath = "/minio/health/cluster"

// needsQuorum reports whether a passing probe must also show write
// quorum: while the target is not ready. A node that (re)starts answers
// ready before it has reconnected to its peers' drives; until it has, it
// refuses writes (503 SlowDownWrite) and answers reads 404 for objects it
// cannot find on the drives it sees. After every node restarted at once
// the same holds for the first nodes back.
func (p *prober) needsQuorum() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != stateReady
}

// checkQuorum asks the target's cluster health. Anything but 200 turns the
// passing probe into a failed one while a pool using the target has no
// routable node (held requests wait for a cluster that can write), or
// while a ready peer does see write quorum (this node lags behind the
// cluster). When no ready peer sees write quorum either, the cluster is
// read-only everywhere and the node serves reads as well as any: it
// passes.
func (p *prober) checkQuorum(res *probeResult) {
	code, err := p.askQuorum(p.spec, quorumPath)
	if err != nil {
		res.OK, res.Err = false, "quorum check: "+err.Error()
		return
	}
	res.Quorum = code
	if code == http.StatusOK {
		p.noQuorumSince = time.Time{}
		return
	}
	if p.urgent.Load() > 0 {
		// Held requests wait for write quorum, but not past the longest
		// hold of the pools using the target: once a whole hold went by
		// without it, the cluster is read-only (too many nodes gone) and
		// serving reads beats refusing every request.
		now := time.Now()
		if p.noQuorumSince.IsZero() {
			p.noQuorumSince = now
		}
		if now.Sub(p.noQuorumSince) < p.longestHold() {
			res.OK = false
		}
		return
	}
	peer, ok := p.readyPeer()
	if !ok {
		return // nobody to compare with
	}
	if peerCode, err := p.askQuorum(peer, quorumPath); err == nil && peerCode == http.StatusOK {
		res.OK = false
		res.QuorumPeer = peer.Addr
	}
}

// longestHold is the longest hold of the pools using the target.
func (p *prober) longestHold() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	for h := range p.subs {
		d = max(d, h.hold)
	}
	return d
}

// maintenancePath answers 200 while the node, in its own view, could go
// down without its erasure sets losing write quorum: it sees at least one
// node's drives more than quorum. A node restarted a moment ago that has
// not reconnected to its peers sees fewer, and answers 412.
const maintenancePath = "/minio/health/cluster?maintenance=true"

// peersWaitMax bounds how long an undrained node waits to see its peers:
// after that its readiness alone readmits it.
const peersWaitMax = time.Minute

// requirePeers asks the next passing probes to also show that the node
// sees its peers (an undrained node: it was likely restarted while
// drained, and answered 404 and SlowDownWrite until it had reconnected).
func (p *prober) requirePeers() { p.peersSince.Store(time.Now().UnixNano()) }

// checkPeers turns a passing probe into a failed one while the node's
// maintenance check fails and a ready peer's passes: the node sees fewer
// of the cluster's drives than its peers do. It ends (the node is judged
// by its readiness alone again) when the check passes, when no ready peer
// sees more, or after peersWaitMax.
func (p *prober) checkPeers(res *probeResult, since int64) {
	if time.Since(time.Unix(0, since)) > peersWaitMax {
		p.peersSince.CompareAndSwap(since, 0)
		return
	}
	code, _ := p.askQuorum(p.spec, maintenancePath)
	if code == http.StatusOK {
		p.peersSince.CompareAndSwap(since, 0)
		return
	}
	peer, ok := p.readyPeer()
	if !ok {
		p.peersSince.CompareAndSwap(since, 0)
		return
	}
	if pc, err := p.askQuorum(peer, maintenancePath); err == nil && pc == http.StatusOK {
		res.OK, res.Peers, res.PeersPeer = false, code, peer.Addr
		return
	}
	p.peersSince.CompareAndSwap(since, 0) // the others see no more than it does
}

// askQuorum returns the status of spec's node's health path (quorumPath
// or maintenancePath).
func (p *prober) askQuorum(spec probeSpec, path string) (int, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.Scheme+"://"+spec.Addr+path, nil)
	if err != nil {
		return 0, err
	}
	if spec.Host != "" {
		req.Host = spec.Host
	}
	req.Header.Set("User-Agent", "caddy-minio-lb-healthready")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, errors.New(shortErr(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// readyPeer returns the probe target of a ready node of a pool using p,
// other than p's own target.
func (p *prober) readyPeer() (probeSpec, bool) {
	p.mu.Lock()
	subs := make([]*HealthReady, 0, len(p.subs))
	for h := range p.subs {
		subs = append(subs, h)
	}
	p.mu.Unlock()
	for _, h := range subs {
		for _, n := range h.nodes {
			if n.probe != p && n.probe.snapshot().State == stateReady {
				return n.probe.spec, true
			}
		}
	}
	return probeSpec{}, false
}

// do sends one probe request and judges the answer by MinIO's rules.
func (p *prober) do() probeResult {
	res := probeResult{Start: time.Now()}
	ctx, cancel := context.WithTimeout(p.ctx, p.spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, p.spec.Method, p.url, nil)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	if p.spec.Host != "" {
		req.Host = p.spec.Host
	}
	req.Header.Set("User-Agent", "caddy-minio-lb-healthready")
	resp, err := p.client.Do(req)
	if err != nil {
		res.Latency = time.Since(res.Start)
		res.Err = shortErr(err)
		return res
	}
	// Keep the start of the body (a busy answer names itself there), drain
	// a little more so the server is not cut mid-write, then close.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 60<<10))
	_ = resp.Body.Close()
	res.Latency = time.Since(res.Start)
	res.Status = resp.StatusCode
	res.ServerStatus = resp.Header.Get(minioStatusHeader)
	// MinIO's readiness answers 503 ServerBusy (an S3 error document, GET
	// only) when its request queue is over capacity: busy, not dead.
	res.Busy = resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(head, []byte("<Code>ServerBusy</Code>"))
	// A starting MinIO answers 200 with X-Minio-Server-Status: offline; any
	// value of that header means the node cannot serve yet.
	res.OK = resp.StatusCode == p.spec.Expect && res.ServerStatus == ""
	return res
}

// shortErr keeps the part of a client error that says what happened.
func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		// "Get \"http://...\": dial tcp ...: connect: connection refused"
		// → "connection refused"
		return s[i+2:]
	}
	return s
}

// record feeds one result into the state machine and kicks the pools
// that use the target.
func (p *prober) record(res probeResult) {
	for _, h := range p.recordLocked(res) {
		h.kick()
	}
}

// recordLocked is record's part under p.mu (unlocked by defer, so that a
// recovered panic leaves the prober usable): from unknown one result
// decides; between confirmed states rise/fall consecutive results do. It
// returns the subscribed pools.
func (p *prober) recordLocked(res probeResult) []*HealthReady {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = res
	p.hasResult = true
	p.probes++
	if res.ServerStatus != "" {
		p.offline++
	}
	secs := res.Latency.Seconds()
	for i, ub := range probeBuckets {
		if secs <= ub {
			p.histCounts[i]++
		}
	}
	p.histSum += secs
	p.histN++
	now := time.Now()
	switch {
	case res.Busy:
		// Neither a pass nor a failure: the node is alive and overloaded.
		// Its state stays; the pools reduce its share for busy_window.
		p.lastBusy = now
	case res.OK:
		p.passes++
		p.fails = 0
		p.passStarts[p.passNext] = res.Start
		p.passNext = (p.passNext + 1) % len(p.passStarts)
		if p.state == stateUnknown || (p.state == stateNotReady && p.passes >= p.rise()) {
			p.state, p.since = stateReady, now
		}
	default:
		p.fails++
		p.passes = 0
		if p.state == stateUnknown || (p.state == stateReady && p.fails >= p.spec.Fall) {
			p.state, p.since = stateNotReady, now
		}
	}
	subs := make([]*HealthReady, 0, len(p.subs))
	for h := range p.subs {
		subs = append(subs, h)
	}
	return subs
}

// passedSince reports whether the latest rise consecutive probes all
// passed and all started after t: the readmission rule after a passive
// ejection at t.
func (p *prober) passedSince(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	rise := p.rise()
	if p.passes < rise {
		return false
	}
	// passNext is one past the newest pass start; the oldest of the last
	// rise passes is rise places back in the ring.
	oldest := (p.passNext - rise + len(p.passStarts)) % len(p.passStarts)
	return p.passStarts[oldest].After(t)
}

func (p *prober) snapshot() probeSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return probeSnapshot{
		State: p.state, Since: p.since, Passes: p.passes, Fails: p.fails,
		Last: p.last, Probes: p.probes, Offline: p.offline, HasResult: p.hasResult, LastBusy: p.lastBusy,
		histCounts: append([]uint64(nil), p.histCounts...), histSum: p.histSum, histSamples: p.histN,
	}
}

// rise is the passes that make the target ready: rise, or one while no
// node of a pool using it can take requests (any node that can serve is
// better than holding or refusing every request). Called under p.mu.
func (p *prober) rise() int {
	if p.urgent.Load() > 0 {
		return 1
	}
	return p.spec.Rise
}

// setUrgent counts a pool using the target in or out of "no routable
// node"; the first one in wakes the loop for an immediate probe.
func (p *prober) setUrgent(on bool) {
	if !on {
		p.urgent.Add(-1)
		return
	}
	if p.urgent.Add(1) == 1 {
		p.probeNow()
	}
}

// probeNow wakes the loop for a probe at once (an undrained node).
func (p *prober) probeNow() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *prober) subscribe(h *HealthReady) {
	p.mu.Lock()
	p.subs[h] = struct{}{}
	p.mu.Unlock()
}

func (p *prober) unsubscribe(h *HealthReady) {
	p.mu.Lock()
	delete(p.subs, h)
	p.mu.Unlock()
}
