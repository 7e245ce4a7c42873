package healthready

import (
	"sync"
	"time"
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
	ejections uint64
	subs      map[*HealthReady]struct{}
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
	s.ejected, s.ejectedAt = true, now
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

// status returns whether the address is ejected and since when.
func (s *passiveState) status() (bool, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ejected, s.ejectedAt
}

// readmit ends an ejection that started at at; false if another pool
// already did or a newer ejection replaced it.
func (s *passiveState) readmit(at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ejected || !s.ejectedAt.Equal(at) {
		return false
	}
	s.ejected = false
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
