package traffic

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
)

// Bounds of the registry; see the package doc, Bounded memory and labels.
const (
	// MaxPoolNodes is the most nodes one pool tracks by name.
	MaxPoolNodes = 64
	// MaxPools is the most pools the process tracks by name.
	MaxPools = 16
	// OverflowName names the node (or pool) that stands for every node
	// (pool) past the bounds.
	OverflowName = "_overflow"
)

// Outcome is how an attempt ended; see the package doc, Attempts and
// outcomes, for the exact meaning of each.
type Outcome uint8

// The outcomes. Their String values are metric label values.
const (
	OK        Outcome = iota // the node's answer went to the client
	Retried                  // failed; the request went on to another node
	Failed                   // failed; the request ended with it (the client got an error)
	Cancelled                // abandoned: a hedge loser, or the client went away
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "retried", "failed", "cancelled"}

// String is the outcome's label value.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Status classes of an attempt: none (no response), then 1xx..5xx.
const (
	statusNone = iota
	status1xx
	status2xx
	status3xx
	status4xx
	status5xx
	numStatus
)

var statusNames = [numStatus]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(status int) int {
	if status < 100 || status > 599 {
		return statusNone
	}
	return status / 100
}

// Node is the traffic of one node in one pool. Get it with For and keep
// the pointer: every method is safe for concurrent use, allocation-free
// and nil-safe (a nil *Node records nothing), so a caller without a node
// need not check.
type Node struct {
	pool    *PoolStats
	name    string
	idx     int // index in pool.nodes; the retry matrix column
	created time.Time

	begins   atomic.Uint64 // in flight = begins - ended attempts (the sum of reqs)
	reqs     [s3op.Count][numStatus][numOutcomes]atomic.Uint64
	lat      [s3op.Count]latHist // first-byte latency
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	retryTo  [MaxPoolNodes + 1]atomic.Uint64 // by destination index; [MaxPoolNodes]: OverflowName
	hedgeWon atomic.Uint64
	hedgeLst atomic.Uint64
	busy     atomic.Uint64
	shutdown atomic.Uint64

	ring ring // snapshots for Window
}

// Name is the node's address as given to For (or OverflowName).
func (n *Node) Name() string { return n.name }

// Pool is the node's pool.
func (n *Node) Pool() *PoolStats { return n.pool }

// Begin records that an attempt to the node started: in-flight + 1. Every
// Begin must be followed by exactly one End.
//
// In flight is not a gauge of its own: it is the attempts begun minus the
// attempts counted by End, read at scrape time. That saves End an atomic
// add, about 15% of its cost.
func (n *Node) Begin() {
	if n == nil {
		return
	}
	n.begins.Add(1)
}

// End records the end of an attempt that Begin started: in-flight - 1, the
// attempt counted by op, status class and outcome, its first-byte latency
// (when status > 0) and its bytes. status 0 means there was no response
// (transport error, timeout, cancelled before the answer). See the package
// doc for the meaning of outcome, ttfb, bytesIn and bytesOut.
func (n *Node) End(op s3op.Op, status int, ttfb time.Duration, outcome Outcome, bytesIn, bytesOut int64) {
	if n == nil {
		return
	}
	if int(op) >= s3op.Count {
		op = s3op.Other
	}
	if outcome >= numOutcomes {
		outcome = Failed
	}
	sc := statusClass(status)
	n.reqs[op][sc][outcome].Add(1)
	if sc != statusNone {
		if ttfb < 0 {
			ttfb = 0
		}
		n.lat[op].observe(ttfb)
	}
	if bytesIn > 0 {
		n.bytesIn.Add(uint64(bytesIn))
	}
	if bytesOut > 0 {
		n.bytesOut.Add(uint64(bytesOut))
	}
}

// Retry records one retry of a request from n (whose attempt failed, with
// outcome Retried) to to. A retry to nil, to a node of another pool or to
// a node past MaxPoolNodes is counted as going to OverflowName.
func (n *Node) Retry(to *Node) {
	if n == nil {
		return
	}
	i := MaxPoolNodes
	if to != nil && to.pool == n.pool {
		i = to.idx
	}
	n.retryTo[i].Add(1)
}

// Hedge records a hedged read sent to n (the second attempt of a read
// sent while the first was slow): won when n's answer was the one used.
// The losing attempt ends with outcome Cancelled.
func (n *Node) Hedge(won bool) {
	if n == nil {
		return
	}
	if won {
		n.hedgeWon.Add(1)
	} else {
		n.hedgeLst.Add(1)
	}
}

// Busy records that n refused a request because it was busy: a 429, or a
// 503 with S3 error SlowDown/ServerBusy. Busy is not dead: the node stays
// routable; this is the sign to look at its load.
func (n *Node) Busy() {
	if n == nil {
		return
	}
	n.busy.Add(1)
}

// ShuttingDown records that n refused a request because it is shutting
// down (MinIO answers 503 "http: Server closed" with Connection: close on
// open connections while it stops).
func (n *Node) ShuttingDown() {
	if n == nil {
		return
	}
	n.shutdown.Add(1)
}

// InFlight is the number of attempts to n in flight now.
func (n *Node) InFlight() int64 {
	if n == nil {
		return 0
	}
	var ended uint64
	for op := range n.reqs {
		for sc := range n.reqs[op] {
			for o := range n.reqs[op][sc] {
				ended += n.reqs[op][sc][o].Load()
			}
		}
	}
	return inFlight(n.begins.Load(), ended)
}

// inFlight is begun - ended, where ended was read before begun (so an
// attempt that ends in between is counted in neither or in begun only,
// never in ended only), and 0 if End was called without Begin.
func inFlight(begun, ended uint64) int64 {
	if begun < ended {
		return 0
	}
	return int64(begun - ended)
}

// PoolStats is the traffic of a pool: its nodes, and what happens to
// requests before a node is chosen (holds). Safe for concurrent use.
type PoolStats struct {
	reg  *registry
	name string

	mu    sync.Mutex                // guards adding nodes
	nodes atomic.Pointer[[]*Node]   // in creation order, copy on write
	byKey atomic.Pointer[nodeIndex] // name → node, copy on write
	over  *Node                     // past MaxPoolNodes, made once

	holding      atomic.Int64
	holdEnded    [numHoldResults]atomic.Uint64
	holdRejected atomic.Uint64
	holdWait     holdHist
}

type nodeIndex map[string]*Node

// Name is the pool's name as given to For or Pool.
func (p *PoolStats) Name() string { return p.name }

// Nodes returns the pool's nodes in the order they were first seen. The
// slice is shared: do not modify it.
func (p *PoolStats) Nodes() []*Node {
	if p == nil {
		return nil
	}
	if l := p.nodes.Load(); l != nil {
		return *l
	}
	return nil
}

// HoldBegin records that a request started waiting for a routable node
// (the pool had none): holding + 1. Every HoldBegin must be followed by
// exactly one Hold.
func (p *PoolStats) HoldBegin() {
	if p == nil {
		return
	}
	p.holding.Add(1)
}

// HoldResult is how a hold ended.
type HoldResult uint8

// The hold results. Their String values are metric label values.
const (
	HoldServed    HoldResult = iota // a node became routable in time; the request went on
	HoldExpired                     // the hold's deadline passed; the client got an error
	HoldCancelled                   // the client went away while held
	numHoldResults
)

var holdResultNames = [numHoldResults]string{"served", "expired", "cancelled"}

// String is the result's label value.
func (r HoldResult) String() string {
	if r < numHoldResults {
		return holdResultNames[r]
	}
	return "unknown"
}

// Hold records the end of a hold that HoldBegin started, after wait, and
// how it ended.
func (p *PoolStats) Hold(wait time.Duration, result HoldResult) {
	if p == nil {
		return
	}
	p.holding.Add(-1)
	if result >= numHoldResults {
		result = HoldExpired
	}
	p.holdEnded[result].Add(1)
	if wait < 0 {
		wait = 0
	}
	p.holdWait.observe(wait)
}

// HoldRejected records a request that would have been held but was
// refused at once (too many requests holding already).
func (p *PoolStats) HoldRejected() {
	if p == nil {
		return
	}
	p.holdRejected.Add(1)
}

// Holding is the number of requests holding now.
func (p *PoolStats) Holding() int64 {
	if p == nil {
		return 0
	}
	return p.holding.Load()
}

// registry holds every pool and node of a process (std) or of a test.
type registry struct {
	mu     sync.Mutex
	pools  atomic.Pointer[poolIndex] // copy on write
	list   atomic.Pointer[[]*PoolStats]
	over   *PoolStats
	now    func() time.Time
	onNode func() // called once per new node (starts std's sampler)
}

type poolIndex map[string]*PoolStats

func newRegistry(now func() time.Time) *registry {
	if now == nil {
		now = time.Now
	}
	return &registry{now: now}
}

// std is the process's registry: it outlives every config.
var std = newRegistry(nil)

func init() { std.onNode = startSampler }

// For returns the stats of node in pool, creating them on first use. Call
// it once per node (at provision or on first sight) and keep the pointer;
// it does not allocate after the first call for a node either, but it
// looks two maps up.
func For(pool, node string) *Node { return std.node(pool, node) }

// Lookup returns the stats of node in pool, or nil if nothing was ever
// recorded for it (every method of a nil *Node is a no-op or zero).
func Lookup(pool, node string) *Node { return std.lookup(pool, node) }

// Pool returns the stats of a pool, creating them on first use.
func Pool(name string) *PoolStats { return std.pool(name) }

// LookupPool returns the stats of a pool, or nil if it was never used.
func LookupPool(name string) *PoolStats { return std.lookupPool(name) }

// Forget drops a pool's stats from the registry: its series leave
// /metrics, and the next use of the name starts from zero. Tests call it
// when they are done with a pool, so that go test -count=N, which makes
// new pools in one process, stays within MaxPools.
func Forget(pool string) { std.forget(pool) }

func (r *registry) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.pools.Load()
	if old == nil || (*old)[name] == nil {
		return
	}
	gone := (*old)[name]
	idx := make(poolIndex, len(*old)-1)
	for k, v := range *old {
		if k != name {
			idx[k] = v
		}
	}
	r.pools.Store(&idx)
	var l []*PoolStats
	for _, p := range r.poolList() {
		if p != gone {
			l = append(l, p)
		}
	}
	r.list.Store(&l)
}

func (r *registry) lookupPool(name string) *PoolStats {
	if idx := r.pools.Load(); idx != nil {
		return (*idx)[name]
	}
	return nil
}

func (r *registry) pool(name string) *PoolStats {
	if p := r.lookupPool(name); p != nil {
		return p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.pools.Load()
	if old != nil {
		if p := (*old)[name]; p != nil {
			return p
		}
	}
	n := 0
	if old != nil {
		n = len(*old)
	}
	if n >= MaxPools {
		if r.over == nil {
			r.over = r.newPool(OverflowName)
		}
		return r.over
	}
	p := r.newPool(name)
	idx := make(poolIndex, n+1)
	if old != nil {
		for k, v := range *old {
			idx[k] = v
		}
	}
	idx[name] = p
	r.pools.Store(&idx)
	return p
}

// newPool makes a pool and adds it to list; r.mu is held.
func (r *registry) newPool(name string) *PoolStats {
	p := &PoolStats{reg: r, name: name}
	var l []*PoolStats
	if old := r.list.Load(); old != nil {
		l = append(l, *old...)
	}
	l = append(l, p)
	r.list.Store(&l)
	return p
}

// pools returns every pool in creation order (the overflow pool last when
// it exists).
func (r *registry) poolList() []*PoolStats {
	if l := r.list.Load(); l != nil {
		return *l
	}
	return nil
}

func (r *registry) lookup(pool, node string) *Node {
	p := r.lookupPool(pool)
	if p == nil {
		return nil
	}
	if idx := p.byKey.Load(); idx != nil {
		return (*idx)[node]
	}
	return nil
}

func (r *registry) node(pool, node string) *Node {
	p := r.pool(pool)
	if idx := p.byKey.Load(); idx != nil {
		if n := (*idx)[node]; n != nil {
			return n
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.byKey.Load()
	if old != nil {
		if n := (*old)[node]; n != nil {
			return n
		}
	}
	if p.over != nil && len(p.Nodes()) >= MaxPoolNodes {
		return p.over
	}
	nodes := p.Nodes()
	name := node
	if len(nodes) >= MaxPoolNodes {
		name = OverflowName
	}
	n := &Node{pool: p, name: name, idx: len(nodes), created: r.now()}
	if name == OverflowName {
		// The overflow node takes the last column of the retry matrix,
		// where retries to nil or to another pool land too.
		n.idx = MaxPoolNodes
		p.over = n
	}
	l := append(append(make([]*Node, 0, len(nodes)+1), nodes...), n)
	p.nodes.Store(&l)
	if name != OverflowName {
		idx := make(nodeIndex, len(nodes)+1)
		if old != nil {
			for k, v := range *old {
				idx[k] = v
			}
		}
		idx[node] = n
		p.byKey.Store(&idx)
	}
	if r.onNode != nil {
		r.onNode()
	}
	return n
}
