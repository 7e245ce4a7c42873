package healthready

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

// caddyHostCounts are the counters Caddy itself keeps per upstream address.
type caddyHostCounts struct {
	InFlight int
	Fails    int
}

// caddyHosts reads Caddy's per-address upstream counters (requests in
// flight, passive max_fails count) through Caddy's own admin handler for
// GET /reverse_proxy/upstreams, called in process (no network, no admin
// endpoint needed). For dynamic upstreams this is the only public view of
// them: Caddy keeps the counters in its dynamic-host table, keyed by dial
// address, and the Upstream values healthready returns are per request.
// On any error it returns nil and the status page shows no counts.
func caddyHosts() map[string]caddyHostCounts {
	info, err := caddy.GetModule("admin.api.reverse_proxy")
	if err != nil {
		return nil
	}
	router, ok := info.New().(caddy.AdminRouter)
	if !ok {
		return nil
	}
	for _, route := range router.Routes() {
		if route.Pattern != "/reverse_proxy/upstreams" {
			continue
		}
		req, err := http.NewRequest(http.MethodGet, route.Pattern, nil)
		if err != nil {
			return nil
		}
		var w bufferWriter
		if route.Handler.ServeHTTP(&w, req) != nil || (w.status != 0 && w.status != http.StatusOK) {
			return nil
		}
		var list []struct {
			Address     string `json:"address"`
			NumRequests int    `json:"num_requests"`
			Fails       int    `json:"fails"`
		}
		if json.Unmarshal(w.body.Bytes(), &list) != nil {
			return nil
		}
		// An address can be listed more than once: Caddy reports its
		// dynamic-host entry and, separately, its global in-flight count
		// for the same requests. The largest value is the one to show.
		out := make(map[string]caddyHostCounts, len(list))
		for _, u := range list {
			c := out[u.Address]
			c.InFlight = max(c.InFlight, u.NumRequests)
			c.Fails = max(c.Fails, u.Fails)
			out[u.Address] = c
		}
		return out
	}
	return nil
}

// bufferWriter is the smallest http.ResponseWriter that keeps the body.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *bufferWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

func (w *bufferWriter) WriteHeader(status int) { w.status = status }
