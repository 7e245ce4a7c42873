package healthready

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// caddyHostCounts are the counters Caddy itself keeps per upstream address.
type caddyHostCounts struct {
	InFlight int
	Fails    int
}

// upstreamsHandler is Caddy's own admin handler for
// GET /reverse_proxy/upstreams, looked up once (nil if Caddy has none).
var upstreamsHandler = sync.OnceValue(func() caddy.AdminHandler {
	info, err := caddy.GetModule("admin.api.reverse_proxy")
	if err != nil {
		return nil
	}
	router, ok := info.New().(caddy.AdminRouter)
	if !ok {
		return nil
	}
	for _, route := range router.Routes() {
		if route.Pattern == "/reverse_proxy/upstreams" {
			return route.Handler
		}
	}
	return nil
})

// caddyHosts reads Caddy's per-address upstream counters (requests in
// flight, passive max_fails count) through Caddy's own admin handler for
// GET /reverse_proxy/upstreams, called in process (no network, no admin
// endpoint needed). For dynamic upstreams this is the only public view of
// them: Caddy keeps the counters in its dynamic-host table, keyed by dial
// address, and the Upstream values healthready returns are per request.
// On any error it returns nil and the status page shows no counts.
func caddyHosts() map[string]caddyHostCounts {
	handler := upstreamsHandler()
	if handler == nil {
		return nil
	}
	rec := httptest.NewRecorder()
	if handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/reverse_proxy/upstreams", nil)) != nil || rec.Code != http.StatusOK {
		return nil
	}
	var list []struct {
		Address     string `json:"address"`
		NumRequests int    `json:"num_requests"`
		Fails       int    `json:"fails"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &list) != nil {
		return nil
	}
	// An address can be listed more than once: Caddy reports its
	// dynamic-host entry and, separately, its global in-flight count for
	// the same requests. The largest value is the one to show.
	out := make(map[string]caddyHostCounts, len(list))
	for _, u := range list {
		c := out[u.Address]
		c.InFlight = max(c.InFlight, u.NumRequests)
		c.Fails = max(c.Fails, u.Fails)
		out[u.Address] = c
	}
	return out
}
