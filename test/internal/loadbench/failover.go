package loadbench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// FailoverSpec is the failover timeline: requests of 1 KiB (4 GETs to 1
// PUT) at Rate per second
// with Sessions session ids for Duration; backend 1 of 4 is killed at
// KillAt and restarted at RestartAt.
type FailoverSpec struct {
	Rate      int
	Duration  time.Duration
	KillAt    time.Duration
	RestartAt time.Duration
	Sessions  int
	Backends  int
}

// DefaultFailover is the brief's timeline.
var DefaultFailover = FailoverSpec{Rate: 500, Duration: 20 * time.Second, KillAt: 5 * time.Second, RestartAt: 12 * time.Second, Sessions: 1000, Backends: 4}

// FailoverResult is one proxy's timeline.
type FailoverResult struct {
	Kind      Kind
	Requests  int
	Errors    int
	Dropped   int   // not sent: too many requests in flight (the proxy stalled)
	ErrPerSec []int // client-visible errors per second of the run
	ErrSample string
	// KilledHits is the number of non-probe requests the proxy sent to the
	// killed node while it was down; LastHit is when the last one came,
	// after the kill (-1: none came).
	KilledHits int64
	LastHit    time.Duration
	// BackAfter is how long after the restart the node got its first
	// request (-1: none before the run ended).
	BackAfter time.Duration
	Err       string // the run itself failed (proxy did not start, ...)
}

// RunFailover starts fresh backends and a fresh proxy of kind, then runs
// the timeline against it.
func RunFailover(ctx context.Context, kind Kind, caddyBin, dir string, spec FailoverSpec) FailoverResult {
	res := FailoverResult{Kind: kind, LastHit: -1, BackAfter: -1}
	var backends []*Backend
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	var ups []string
	for i := 0; i < spec.Backends; i++ {
		b, err := StartBackend(i, "127.0.0.1:0")
		if err != nil {
			res.Err = err.Error()
			return res
		}
		backends = append(backends, b)
		ups = append(ups, b.Addr)
	}
	listen, err := FreeAddr()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	p, err := StartProxy(ctx, kind, caddyBin, dir, []Site{{Listen: listen, Upstreams: ups}})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer p.Stop()
	base := "http://" + listen
	if err := WaitServing(ctx, base+"/obj/1?"+sessionQuery(0), 15*time.Second); err != nil {
		res.Err = err.Error()
		return res
	}
	// Let every proxy see all backends healthy before the clock starts.
	time.Sleep(time.Second)

	victim := backends[1]
	client := NewClient(256)
	client.Timeout = 10 * time.Second
	defer client.Transport.(*http.Transport).CloseIdleConnections()

	secs := int(spec.Duration/time.Second) + 1
	res.ErrPerSec = make([]int, secs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	inflight := make(chan struct{}, 512)
	rng := rand.New(rand.NewPCG(7, 11))
	interval := time.Second / time.Duration(spec.Rate)
	total := int(spec.Duration / interval)

	t0 := time.Now()
	killed, restarted := false, false
	var killT, restartT time.Time
	for i := 0; i < total && ctx.Err() == nil; i++ {
		next := t0.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(next))
		now := time.Since(t0)
		if !killed && now >= spec.KillAt {
			killed = true
			killT = time.Now()
			if err := victim.Kill(); err != nil {
				res.Err = "kill: " + err.Error()
			}
		}
		if !restarted && now >= spec.RestartAt {
			restarted = true
			restartT = time.Now()
			if err := victim.Restart(); err != nil {
				res.Err = "restart: " + err.Error()
			}
		}
		select {
		case inflight <- struct{}{}:
		default:
			mu.Lock()
			res.Dropped++
			mu.Unlock()
			continue
		}
		sess := rng.IntN(spec.Sessions)
		// Every 5th request is a PUT: proxies retry idempotent GETs on
		// another node, but a PUT whose body went to a dead node fails
		// unless the proxy had stopped sending there.
		put := i%5 == 4
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inflight }()
			s := time.Now()
			var req *http.Request
			if put {
				req, _ = http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/obj/put?%s", base, sessionQuery(sess)), bytes.NewReader(payload[:1024]))
			} else {
				req, _ = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/obj/1024?%s", base, sessionQuery(sess)), nil)
			}
			_, err := doHTTP(client, req)
			mu.Lock()
			defer mu.Unlock()
			res.Requests++
			if err != nil {
				res.Errors++
				sec := min(int(s.Sub(t0)/time.Second), secs-1)
				res.ErrPerSec[sec]++
				if res.ErrSample == "" {
					res.ErrSample = err.Error()
				}
			}
		}()
	}
	wg.Wait()
	hits, last, first := victim.killStats()
	res.KilledHits = hits
	if !last.IsZero() && killed {
		res.LastHit = last.Sub(killT)
	}
	if !first.IsZero() && restarted {
		res.BackAfter = first.Sub(restartT)
	}
	if !p.Alive() {
		res.Err = "proxy exited during the run: " + tail(p.Output(), 500)
	}
	return res
}
