package sessionaffinity

import (
	"math"
	"net/http"
)

// NextNode returns, among candidates (dial addresses), the one with the
// highest rendezvous score for r's key that skip does not reject: where a
// retry of r would go. The minio transport sends hedged reads there, so a
// hedge lands on the node that would serve the key if its first node were
// gone. Without a key it returns the first candidate skip accepts.
func (s *SessionAffinitySelection) NextNode(r *http.Request, candidates []string, skip func(string) bool) string {
	key, label := s.extract(r)
	best := ""
	if label == nil {
		for _, c := range candidates {
			if !skip(c) {
				return c
			}
		}
		return best
	}
	var bestPlain uint64
	bestWeighted := math.Inf(-1)
	for _, c := range candidates {
		if skip(c) {
			continue
		}
		ah, w := s.addrs.lookup(c, s.weights)
		sc := score(key, ah)
		if s.weights == nil {
			if best == "" || sc > bestPlain {
				best, bestPlain = c, sc
			}
			continue
		}
		if ws := weightedScore(sc, w); best == "" || ws > bestWeighted {
			best, bestWeighted = c, ws
		}
	}
	return best
}
