package loadbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// Picker maps a session key onto one of the servers ("host:port").
type Picker interface {
	Pick(servers []string, key string) string
}

// KetamaPicker is nginx's `hash $arg_sessionid consistent`.
type KetamaPicker struct{ rings map[string]*KetamaRing }

// Pick builds (and caches) the ring of this server set and looks key up.
func (k *KetamaPicker) Pick(servers []string, key string) string {
	if k.rings == nil {
		k.rings = map[string]*KetamaRing{}
	}
	id := fmt.Sprint(servers)
	r, ok := k.rings[id]
	if !ok {
		r = NewKetamaRing(servers)
		k.rings[id] = r
	}
	return r.Lookup(key, nil)
}

// SelectorPicker drives a Caddy selection policy through its Select method
// with a GET /?sessionid=<key> request, the way reverse_proxy calls it.
type SelectorPicker struct {
	Sel   reverseproxy.Selector
	pools map[string]reverseproxy.UpstreamPool
}

// Pick returns the Dial of the upstream Select chose, "" if none.
func (s *SelectorPicker) Pick(servers []string, key string) string {
	if s.pools == nil {
		s.pools = map[string]reverseproxy.UpstreamPool{}
	}
	id := fmt.Sprint(servers)
	pool, ok := s.pools[id]
	if !ok {
		for _, srv := range servers {
			// A zero Host is a healthy host with no requests in flight.
			pool = append(pool, &reverseproxy.Upstream{Host: new(reverseproxy.Host), Dial: srv})
		}
		s.pools[id] = pool
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: "/bucket/object", RawQuery: "sessionid=" + url.QueryEscape(key)},
		Header:     http.Header{"User-Agent": {"loadbench"}},
		RemoteAddr: "127.0.0.1:40000",
		Host:       "127.0.0.1",
	}
	up := s.Sel.Select(pool, req, nil)
	if up == nil {
		return ""
	}
	return up.Dial
}

// CaddyQueryPicker is stock Caddy's `lb_policy query sessionid`.
func CaddyQueryPicker() *SelectorPicker {
	return &SelectorPicker{Sel: reverseproxy.QueryHashSelection{Key: "sessionid"}}
}

// ModulePicker loads a selection policy from Caddy's module registry by its
// name under http.reverse_proxy.selection_policies, configures it from
// cfgJSON and provisions it. This is how the harness reaches our
// session_affinity policy without depending on its Go API.
func ModulePicker(name, cfgJSON string) (p *SelectorPicker, cleanup func(), err error) {
	id := "http.reverse_proxy.selection_policies." + name
	info, err := caddy.GetModule(id)
	if err != nil {
		return nil, nil, fmt.Errorf("module %s is not compiled into the harness: %w", id, err)
	}
	mod := info.New()
	if cfgJSON != "" {
		if err := json.Unmarshal([]byte(cfgJSON), mod); err != nil {
			return nil, nil, fmt.Errorf("configuring %s with %s: %w", id, cfgJSON, err)
		}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer func() {
		if r := recover(); r != nil {
			cancel()
			err = fmt.Errorf("provisioning %s panicked: %v", id, r)
		}
	}()
	if prov, ok := mod.(caddy.Provisioner); ok {
		if err := prov.Provision(ctx); err != nil {
			cancel()
			return nil, nil, fmt.Errorf("provisioning %s: %w", id, err)
		}
	}
	sel, ok := mod.(reverseproxy.Selector)
	if !ok {
		cancel()
		return nil, nil, fmt.Errorf("module %s (%T) is not a reverseproxy.Selector", id, mod)
	}
	return &SelectorPicker{Sel: sel}, cancel, nil
}

// HashQuality is how well a policy spreads keys and how many it moves when
// one server goes away.
type HashQuality struct {
	Keys        int
	MaxOverMean float64 // busiest server's keys / mean keys per server; 1 is perfect
	MinOverMean float64 // idlest server's keys / mean
	Moved       float64 // fraction of all keys that changed server when one was removed (mean over each server removed)
	Ideal       float64 // the least possible Moved: 1/len(servers)
	Collateral  float64 // fraction of keys that moved although their server stayed (should be 0)
}

// MeasureHashQuality hashes nKeys keys onto servers, then removes each server
// in turn and counts the keys that changed server.
func MeasureHashQuality(p Picker, servers []string, nKeys int) HashQuality {
	keys := make([]string, nKeys)
	for i := range keys {
		// Session ids as an application would mint them.
		keys[i] = fmt.Sprintf("%08x-%04x-sess", uint32(i)*2654435761, i%65536)
	}
	owner := make([]string, nKeys)
	counts := map[string]int{}
	for i, k := range keys {
		owner[i] = p.Pick(servers, k)
		counts[owner[i]]++
	}
	q := HashQuality{Keys: nKeys, Ideal: 1 / float64(len(servers))}
	mean := float64(nKeys) / float64(len(servers))
	minC := nKeys
	maxC := 0
	for _, s := range servers {
		c := counts[s]
		minC = min(minC, c)
		maxC = max(maxC, c)
	}
	q.MaxOverMean = float64(maxC) / mean
	q.MinOverMean = float64(minC) / mean
	var moved, collateral int
	for ri, removed := range servers {
		less := slices.Delete(slices.Clone(servers), ri, ri+1)
		for i, k := range keys {
			now := p.Pick(less, k)
			if now != owner[i] {
				moved++
				if owner[i] != removed {
					collateral++
				}
			}
		}
	}
	total := float64(nKeys * len(servers))
	q.Moved = float64(moved) / total
	q.Collateral = float64(collateral) / total
	return q
}
