// Package minioadmin lets operators drain MinIO nodes through Caddy's admin
// API: `POST /minio-lb/drain` (drain a node, after asking MinIO whether the
// cluster keeps quorum without it), `DELETE /minio-lb/drain` (undrain) and
// `GET /minio-lb/drain` (state, in-flight requests, safe to stop), and the
// `caddy minio-lb drain|undrain|status` command that calls them on one or
// more proxies, as `caddy reload` calls /load.
//
// The endpoints live on Caddy's admin API and get its protections: local
// by default, remote only with Caddy's remote admin (client certificates,
// per-path permissions). Nothing here listens on a port of its own, and the
// status page stays read-only.
package minioadmin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/minio-lb/caddy-minio-lb/healthready"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin is the admin API module `admin.api.minio_lb`. It has no options;
// Caddy loads it with every admin endpoint.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.minio_lb",
		New: func() caddy.Module { return new(Admin) },
	}
}

// DrainPath is the admin API path of drains.
const DrainPath = "/minio-lb/drain"

// Routes returns the admin routes.
func (a Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: DrainPath, Handler: caddy.AdminHandlerFunc(a.handleDrain)}}
}

// DrainRequest is the body of POST and DELETE /minio-lb/drain (DELETE and
// GET also take node and pool as query parameters).
type DrainRequest struct {
	// Node is a node's upstream address host:port (its S3 address also
	// drains the console upstream probed there) or a host (every upstream
	// on that host). Required.
	Node string `json:"node"`
	// Pool restricts the drain to one healthready pool. Default: every pool.
	Pool string `json:"pool,omitempty"`
	// Force drains even when MinIO says the cluster would lose quorum or
	// drives are healing.
	Force bool `json:"force,omitempty"`
	// By says who or what asks, for the logs and the state. Default: the
	// admin client's address and User-Agent.
	By string `json:"by,omitempty"`
}

// DrainAnswer is the JSON answer of every /minio-lb/drain call.
type DrainAnswer struct {
	// Nodes are the upstreams the request named, with their drain state.
	Nodes []healthready.DrainTarget `json:"nodes"`
	// SafeToStop is true when every named upstream is drained and has
	// nothing in flight on this proxy.
	SafeToStop bool `json:"safe_to_stop"`
	// Maintenance is MinIO's answer to the quorum question (drain only).
	Maintenance []healthready.Maintenance `json:"maintenance,omitempty"`
	// Error explains a refusal.
	Error string `json:"error,omitempty"`
}

func (a Admin) handleDrain(w http.ResponseWriter, r *http.Request) error {
	var req DrainRequest
	switch r.Method {
	case http.MethodGet:
		req.Node, req.Pool = r.URL.Query().Get("node"), r.URL.Query().Get("pool")
	case http.MethodPost, http.MethodDelete:
		if err := readRequest(r, &req); err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
		}
		if req.Node == "" {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New(`node: required (a node's host:port or host)`)}
		}
		if req.By == "" {
			req.By = fmt.Sprintf("admin API client %s (%s)", r.RemoteAddr, r.UserAgent())
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s: use GET, POST or DELETE", r.Method)}
	}

	var ans DrainAnswer
	var err error
	status := http.StatusOK
	switch r.Method {
	case http.MethodGet:
		ans.Nodes = healthready.DrainStatus(req.Node, req.Pool)
	case http.MethodPost:
		ans.Nodes, ans.Maintenance, err = healthready.DrainNodes(r.Context(), req.Node, req.Pool, req.By, req.Force)
	case http.MethodDelete:
		ans.Nodes, err = healthready.UndrainNodes(req.Node, req.Pool, req.By)
	}
	switch {
	case errors.Is(err, healthready.ErrNoSuchNode):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	case errors.Is(err, healthready.ErrQuorum):
		status, ans.Error = http.StatusConflict, err.Error()
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	ans.SafeToStop = len(ans.Nodes) > 0
	for _, n := range ans.Nodes {
		if !n.SafeToStop {
			ans.SafeToStop = false
		}
	}
	if ans.Nodes == nil {
		ans.Nodes = []healthready.DrainTarget{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ans)
}

// readRequest reads a DrainRequest from a JSON body, or from the query for
// a request without one; unknown fields are an error that names them.
func readRequest(r *http.Request, req *DrainRequest) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		q := r.URL.Query()
		req.Node, req.Pool, req.By = q.Get("node"), q.Get("pool"), q.Get("by")
		req.Force = q.Get("force") == "true"
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return fmt.Errorf("request body: %v (want {\"node\": \"host:port\", \"pool\": \"...\", \"force\": false, \"by\": \"...\"})", err)
	}
	return nil
}

// Interface guard
var _ caddy.AdminRouter = (*Admin)(nil)
