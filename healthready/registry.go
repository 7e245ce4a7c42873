package healthready

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
)

// Package-level state outlives any one config: probe loops and passive
// ejections are reference-counted by the pools that use them, so a reload
// keeps them and only starts or stops what it adds or removes.
var (
	// probers maps probeSpec → *prober.
	probers = caddy.NewUsagePool()
	// passives maps a dial address (host:port) → *passiveState.
	passives = caddy.NewUsagePool()
)

// acquireProber returns the shared loop of spec, starting it if it is new.
func acquireProber(spec probeSpec, header map[string][]string, sem chan struct{}) (*prober, error) {
	v, _, err := probers.LoadOrNew(spec, func() (caddy.Destructor, error) {
		p := newProber(spec, header, sem)
		p.start()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*prober), nil
}

func releaseProber(spec probeSpec) { _, _ = probers.Delete(spec) }

func acquirePassive(addr string) *passiveState {
	v, _, _ := passives.LoadOrNew(addr, func() (caddy.Destructor, error) {
		return newPassiveState(addr), nil
	})
	return v.(*passiveState)
}

func releasePassive(addr string) { _, _ = passives.Delete(addr) }

// livePools is the registry the status handler and the metrics collector
// read: every provisioned, not yet cleaned-up HealthReady, by pool name.
// During a reload the old and the new generation are both registered for
// a moment; readers use the newest of each name.
var livePools struct {
	sync.Mutex
	seq    uint64
	byName map[string][]*HealthReady
}

func registerPool(h *HealthReady) {
	livePools.Lock()
	defer livePools.Unlock()
	if livePools.byName == nil {
		livePools.byName = make(map[string][]*HealthReady)
	}
	livePools.seq++
	h.seq = livePools.seq
	livePools.byName[h.Name] = append(livePools.byName[h.Name], h)
}

func unregisterPool(h *HealthReady) {
	livePools.Lock()
	defer livePools.Unlock()
	list := livePools.byName[h.Name]
	for i, x := range list {
		if x == h {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(livePools.byName, h.Name)
	} else {
		livePools.byName[h.Name] = list
	}
}

// currentPools returns the newest live pool of each name, sorted by name;
// with filter set, only that pool.
func currentPools(filter string) []*HealthReady {
	livePools.Lock()
	defer livePools.Unlock()
	out := make([]*HealthReady, 0, len(livePools.byName))
	for name, list := range livePools.byName {
		if filter != "" && name != filter {
			continue
		}
		newest := list[0]
		for _, h := range list[1:] {
			if h.seq > newest.seq {
				newest = h
			}
		}
		out = append(out, newest)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// counters are the cumulative counts behind the *_total metrics. They are
// keyed by pool name and node so that they keep counting across reloads
// (a config generation is short-lived, the process is not).
var counters sync.Map // counterKey → *atomic.Uint64

type counterKey struct {
	metric, pool, node string
	to                 nodeState // transitions: the state entered
}

func counter(k counterKey) *atomic.Uint64 {
	if v, ok := counters.Load(k); ok {
		return v.(*atomic.Uint64)
	}
	v, _ := counters.LoadOrStore(k, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}
