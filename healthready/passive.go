package healthready

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
)

// maxPassiveHistory bounds the failure timestamps kept per dial address.
const maxPassiveHistory = 64

// passiveState is the passive (real traffic) health of one upstream dial
// address. It is shared through passives (a caddy.UsagePool keyed by the
// dial address) so that an ejection survives `caddy reload` and every pool
// routing to that address sees it. It is per dial address, not per probe
// target: failures on a console port do not eject the S3 port of the same
// host.
type passiveState struct {
	addr string

	mu        sync.Mutex
	failures  []time.Time // recent failures, oldest first
	ejected   bool
	ejectedAt time.Time
	goingAway string // set when the node was ejected at once (going away, not answering): why
	ejections uint64
	busyUntil time.Time // the node said it is busy; its share is reduced until then
	busyWhy   string
	checking  bool // a slow-node check (NodeSlow) is running
	subs      map[*HealthReady]struct{}
}

// startCheck claims the address's one slow-node check; false if one runs.
func (s *passiveState) startCheck() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checking || s.ejected {
		return false
	}
	s.checking = true
	return true
}

func (s *passiveState) endCheck() {
	s.mu.Lock()
	s.checking = false
	s.mu.Unlock()
}

func newPassiveState(addr string) *passiveState {
	return &passiveState{addr: addr, subs: make(map[*HealthReady]struct{})}
}

// Destruct satisfies caddy.Destructor; nothing runs in the background.
func (s *passiveState) Destruct() error { return nil }

// fail records one failed attempt at now and reports whether it ejected
// the address (fails failures within window). Failures of an address that
// is already ejected are not counted.
func (s *passiveState) fail(now time.Time, fails int, window time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ejected {
		return false
	}
	cut := now.Add(-window)
	kept := s.failures[:0]
	for _, t := range s.failures {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	s.failures = append(kept, now)
	if len(s.failures) > maxPassiveHistory {
		s.failures = s.failures[len(s.failures)-maxPassiveHistory:]
	}
	if len(s.failures) < fails {
		return false
	}
	s.ejected, s.ejectedAt, s.goingAway = true, now, ""
	s.ejections++
	s.failures = s.failures[:0]
	return true
}

// recentFailures counts the failures within window before now.
func (s *passiveState) recentFailures(now time.Time, window time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-window)
	n := 0
	for _, t := range s.failures {
		if t.After(cut) {
			n++
		}
	}
	return n
}

// ejectNow ejects the address at once: the node answered that it is going
// away (why). false if it was already ejected.
func (s *passiveState) ejectNow(now time.Time, why string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ejected {
		return false
	}
	s.ejected, s.ejectedAt, s.goingAway = true, now, why
	s.ejections++
	s.failures = s.failures[:0]
	return true
}

// holdUntilProbed keeps the address out of routing as if ejected at at,
// with why as the reason, without counting an ejection: an undrained node
// until its probes have passed rise times since the undrain. The node was
// most likely restarted while drained, possibly between two probes, and a
// probe state from before says nothing about the new process (seen: a node
// undrained while it answered X-Minio-Server-Status: offline got reads
// that answered 404 on its stale "ready"). An ejection already running is
// kept.
func (s *passiveState) holdUntilProbed(at time.Time, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ejected {
		return
	}
	s.ejected, s.ejectedAt, s.goingAway = true, at, why
	s.failures = s.failures[:0]
}

// goingAwayReason is why the current ejection happened at once, or "".
func (s *passiveState) goingAwayReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ejected {
		return ""
	}
	return s.goingAway
}

// markBusy records a busy answer: the node's share stays reduced until
// until. It reports whether the node was not busy before (a new busy
// period).
func (s *passiveState) markBusy(now, until time.Time, why string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := !s.busyUntil.After(now)
	if until.After(s.busyUntil) {
		s.busyUntil = until
	}
	s.busyWhy = why
	return fresh
}

// busy returns until when the node is busy and why.
func (s *passiveState) busy() (time.Time, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busyUntil, s.busyWhy
}

// status returns whether the address is ejected and since when.
func (s *passiveState) status() (bool, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ejected, s.ejectedAt
}

// ejectionCount counts the ejections of the address (process lifetime).
func (s *passiveState) ejectionCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ejections
}

// readmit ends an ejection that started at at; false if another pool
// already did or a newer ejection replaced it.
func (s *passiveState) readmit(at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ejected || !s.ejectedAt.Equal(at) {
		return false
	}
	s.ejected, s.goingAway = false, ""
	return true
}

func (s *passiveState) subscribers() []*HealthReady {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*HealthReady, 0, len(s.subs))
	for h := range s.subs {
		out = append(out, h)
	}
	return out
}

func (s *passiveState) subscribe(h *HealthReady) {
	s.mu.Lock()
	s.subs[h] = struct{}{}
	s.mu.Unlock()
}

func (s *passiveState) unsubscribe(h *HealthReady) {
	s.mu.Lock()
	delete(s.subs, h)
	s.mu.Unlock()
}

// ResetCache is called by Caddy right before it retries a request, i.e.
// right after an attempt failed (a dial or transport error, or a response
// that matched lb_retry_match). The request's replacer then still names
// the failed attempt's upstream: record it as a node this request failed
// on (GetUpstreams leaves it out of the retry, see failedOn) and count the
// failure against it.
//
// A failure counts once per request and node. Caddy also calls ResetCache
// after an iteration that selected no upstream (and so made no attempt),
// with the placeholder still naming the earlier failure; counting per
// request keeps one request's retry loop from ejecting a node on its own,
// and leaves the placeholder alone for selection policies that read it
// (session_affinity continues with the next node in the key's order).
func (h *HealthReady) ResetCache(r *http.Request) error {
	if r == nil {
		return nil
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return nil
	}
	hostport, _ := repl.GetString(upstreamHostportKey)
	if hostport == "" {
		return nil
	}
	// Through the minio transport, only a transport failure (reset,
	// refused, EOF) counts: a busy node is not failing, a departing one is
	// ejected already, a timed-out one is probed by the transport, and a
	// node that answered (an S3 error that lb_retry_match retries) is alive.
	// MinIO answers 5xx for what is the cluster's and not the node's: a
	// lock held for a frozen peer (503 RequestTimeout), missing quorum (503
	// SlowDownRead); counting those ejected every healthy node at once
	// while one node was frozen.
	if tr := proxytrace.From(r); tr != nil {
		switch tr.LastFailure(hostport) {
		case proxytrace.Error, proxytrace.Unreachable:
		default:
			return nil
		}
	}
	failed := h.failedOn(repl)
	if slices.Contains(failed, hostport) {
		return nil
	}
	repl.Set(h.failedKey, append(failed, hostport))
	if h.PassiveFails >= 0 {
		h.observeFailure(hostport)
	}
	return nil
}

// failedOn lists the nodes of this pool the request has failed on so far,
// as ResetCache recorded them.
func (h *HealthReady) failedOn(repl *caddy.Replacer) []string {
	if repl == nil {
		return nil
	}
	failed, _ := repl.Get(h.failedKey)
	nodes, _ := failed.([]string)
	return nodes
}

const upstreamHostportKey = "http.reverse_proxy.upstream.hostport"

// observeFailure counts one failed attempt against addr and ejects it when
// passive_fails is reached within passive_window.
func (h *HealthReady) observeFailure(addr string) {
	n := h.byAddr[addr]
	if n == nil {
		return
	}
	if !n.passive.fail(time.Now(), h.PassiveFails, time.Duration(h.PassiveWindow)) {
		h.logger.Debug("passive failure", zap.String("pool", h.Name), zap.String("node", n.dial))
		return
	}
	counter(counterKey{metric: "ejections", pool: h.Name, node: n.dial}).Add(1)
	h.logger.Warn("node ejected by passive health check",
		zap.String("pool", h.Name), zap.String("node", n.dial),
		zap.Int("passive_fails", h.PassiveFails),
		zap.Duration("passive_window", time.Duration(h.PassiveWindow)),
		zap.Int("rise", h.Rise))
	// This pool stops routing to it before Caddy's next attempt; the
	// others sharing the address follow from their own goroutines.
	h.evaluate(false)
	for _, o := range n.passive.subscribers() {
		if o != h {
			o.kick()
		}
	}
}
