package healthready

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(StatusHandler{})
	httpcaddyfile.RegisterHandlerDirective("healthready_status", parseStatusCaddyfile)
	// Any anchor makes the directive usable alone in a site or handle
	// block; before respond puts it ahead of a catch-all respond in the
	// same block, which is what an operator writing both expects.
	httpcaddyfile.RegisterDirectiveOrder("healthready_status", httpcaddyfile.Before, "respond")
}

// StatusHandler shows every healthready pool of the process (or one, with
// pool set): as text (like lua-resty-upstream-healthcheck's status page),
// JSON or a self-refreshing HTML page, chosen by ?format=text|json|html or
// the Accept header. A request whose path ends in /ready, or
// ?format=ready, gets the readiness answer for keepalived or an outer load
// balancer: 200 "ready" when every shown pool is ready, else 503.
type StatusHandler struct {
	// Show only the pool of this name. Default: every pool.
	Pool string `json:"pool,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (StatusHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.healthready_status",
		New: func() caddy.Module { return new(StatusHandler) },
	}
}

// statusFormat picks the output format of r, or "" for an unknown one.
func statusFormat(r *http.Request) string {
	if f := r.URL.Query().Get("format"); f != "" {
		switch f = strings.ToLower(f); f {
		case "text", "json", "html", "ready":
			return f
		}
		return ""
	}
	if strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/ready") {
		return "ready"
	}
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "application/json"):
		return "json"
	case strings.Contains(accept, "text/html"):
		return "html"
	}
	return "text"
}

// ServeHTTP answers with the status of the pools; it never calls next.
func (s StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("method %s: the status page answers GET and HEAD", r.Method))
	}
	format := statusFormat(r)
	if format == "" {
		return caddyhttp.Error(http.StatusBadRequest,
			fmt.Errorf("format %q: want text, json, html or ready", r.URL.Query().Get("format")))
	}
	pools := currentPools(s.Pool)
	var hosts map[string]caddyHostCounts
	if format != "ready" {
		hosts = caddyHosts()
	}
	views := make([]PoolView, 0, len(pools))
	now := time.Now()
	for _, h := range pools {
		v := h.view(hosts)
		if format != "ready" {
			addTraffic(&v, now)
		}
		views = append(views, v)
	}
	w.Header().Set("Cache-Control", "no-store")
	switch format {
	case "ready":
		code, body := readiness(views, s.Pool)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, err := w.Write([]byte(body))
		return err
	case "json":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(statusDoc{Ready: allReady(views), Pools: views})
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return renderHTML(w, views)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte(renderText(views)))
		return err
	}
}

// statusDoc is the JSON document of the status page.
type statusDoc struct {
	Ready bool       `json:"ready"`
	Pools []PoolView `json:"pools"`
}

func allReady(views []PoolView) bool {
	if len(views) == 0 {
		return false
	}
	for _, v := range views {
		if !v.Ready {
			return false
		}
	}
	return true
}

// readiness is the answer of the /ready endpoint.
func readiness(views []PoolView, filter string) (int, string) {
	if len(views) == 0 {
		if filter != "" {
			return http.StatusServiceUnavailable, "not ready: no healthready pool named " + filter + "\n"
		}
		return http.StatusServiceUnavailable, "not ready: no healthready pool\n"
	}
	var why []string
	for _, v := range views {
		if v.Ready {
			continue
		}
		switch {
		case v.Cluster != nil && v.Cluster.Quorum == quorumLost:
			why = append(why, fmt.Sprintf("pool %s: cluster %s quorum lost", v.Name, v.Cluster.Gate))
		case v.FailOpen:
			why = append(why, fmt.Sprintf("pool %s: %d/%d nodes ready, below min_ready %d (failing open)", v.Name, v.Routable, v.Total, v.MinReady))
		default:
			why = append(why, fmt.Sprintf("pool %s: %d/%d nodes ready", v.Name, v.Routable, v.Total))
		}
	}
	if len(why) > 0 {
		return http.StatusServiceUnavailable, "not ready: " + strings.Join(why, "; ") + "\n"
	}
	return http.StatusOK, "ready\n"
}

// UnmarshalCaddyfile sets up the handler. Syntax:
//
//	healthready_status [<pool>] {
//	    pool <name>
//	}
func (s *StatusHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		s.Pool = d.Val()
		if d.NextArg() {
			return d.Errf("healthready_status: want at most one pool name, got extra %q", d.Val())
		}
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "pool":
			v, err := oneArg(d, "pool")
			if err != nil {
				return err
			}
			s.Pool = v
		default:
			return d.Errf("unrecognized healthready_status option %q", d.Val())
		}
	}
	return nil
}

func parseStatusCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(StatusHandler)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*StatusHandler)(nil)
	_ caddyfile.Unmarshaler       = (*StatusHandler)(nil)
)
