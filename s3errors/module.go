// Package s3errors answers the proxy's own errors the way S3 clients
// understand them. When no MinIO node could take a request (none routable
// after the hold, a node that could not be reached, an attempt that timed
// out), Caddy's reverse_proxy returns an error and Caddy would answer an
// empty 502/503/504. The `s3_errors` handler, placed in front of
// reverse_proxy, turns such an error into an S3 error document (XML with
// Code, Message, Resource, RequestId) with Retry-After, so SDKs back off and
// retry as they do for MinIO's own SlowDown and ServiceUnavailable, and
// tools show a reason instead of an empty body.
package s3errors

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/minio-lb/caddy-minio-lb/healthready"
)

func init() {
	caddy.RegisterModule(S3Errors{})
	httpcaddyfile.RegisterHandlerDirective("s3_errors", parseCaddyfile)
	// Before reverse_proxy: it must wrap the proxy to see its errors.
	httpcaddyfile.RegisterDirectiveOrder("s3_errors", httpcaddyfile.Before, "reverse_proxy")
}

// Defaults of S3Errors.
const defaultRetryAfter = 1

// S3Errors turns errors returned by the handlers after it (reverse_proxy)
// into S3 XML error responses, when nothing of a response has been written
// yet. Errors with a status below 500 pass through unchanged.
type S3Errors struct {
	// Seconds sent in Retry-After with 503 answers. Default: 1.
	RetryAfter int `json:"retry_after,omitempty"`

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (S3Errors) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.s3_errors",
		New: func() caddy.Module { return new(S3Errors) },
	}
}

// Provision applies the defaults.
func (h *S3Errors) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.RetryAfter == 0 {
		h.RetryAfter = defaultRetryAfter
	}
	return h.Validate()
}

// Validate checks the options.
func (h *S3Errors) Validate() error {
	if h.RetryAfter < 0 || h.RetryAfter > 3600 {
		return fmt.Errorf("retry_after %d: must be 0-3600 seconds", h.RetryAfter)
	}
	return nil
}

// ServeHTTP runs the next handlers and answers their 5xx error as S3 does.
func (h S3Errors) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	tw := &trackingWriter{ResponseWriter: w}
	err := next.ServeHTTP(tw, r)
	if err == nil || tw.wrote {
		return err
	}
	status := http.StatusInternalServerError
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		status = he.StatusCode
	}
	if status < 500 {
		return err
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if waitedForNode(repl) {
		// The request ended waiting for a node. Caddy's proxy loop keeps
		// the error of the attempt before the wait (a 502 for a node that
		// had just gone away) when the wait finds none; the client is told
		// what is true now: no node, retry later.
		status = http.StatusServiceUnavailable
	}
	code, msg := describe(status, repl)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/xml")
	hdr.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", strconv.Itoa(h.RetryAfter))
	}
	requestID := ""
	if repl != nil {
		requestID, _ = repl.GetString("http.request.uuid")
	}
	body := document(code, msg, r.URL.Path, requestID)
	if r.Method == http.MethodHead {
		hdr.Set("Content-Length", "0")
		w.WriteHeader(status)
	} else {
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
	// The error stays visible in Caddy's log as Caddy would have logged it
	// (a 5xx handler error: level error, with the request): the access log
	// only says 502, this line says why (e.g. the last node's dial error).
	if h.logger != nil {
		h.logger.Error("proxy error answered as S3 error", zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: r}),
			zap.Int("status", status), zap.String("code", code), zap.Error(err))
	}
	return nil
}

// waitedForNode reports whether healthready's hold ended without a node for
// the request: it ran out, or hold_max requests were already waiting.
// Either is answered 503, whatever error the attempt before the wait left
// (Caddy keeps that attempt's error when the next finds no node).
func waitedForNode(repl *caddy.Replacer) bool {
	if repl == nil {
		return false
	}
	hold, _ := repl.GetString(healthready.HoldOutcomeKey)
	return hold != ""
}

// describe chooses the S3 error code and message of a proxy error status.
func describe(status int, repl *caddy.Replacer) (code, msg string) {
	switch status {
	case http.StatusServiceUnavailable:
		if repl != nil {
			if hold, _ := repl.GetString(healthready.HoldOutcomeKey); hold == healthready.HoldOutcomeFull {
				return "SlowDown", "Too many requests are waiting for a MinIO node; please reduce your request rate."
			}
		}
		return "ServiceUnavailable", "No MinIO node can take the request now; please retry."
	case http.StatusGatewayTimeout:
		return "ServiceUnavailable", "The MinIO node did not answer in time; please retry."
	case http.StatusBadGateway:
		return "ServiceUnavailable", "The MinIO node could not be reached; please retry."
	}
	return "InternalError", "We encountered an internal error. Please try again."
}

// UnmarshalCaddyfile sets up the handler. Syntax:
//
//	s3_errors {
//	    retry_after <seconds>
//	}
func (h *S3Errors) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("s3_errors: unexpected argument %q", d.Val())
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "retry_after":
			if !d.NextArg() {
				return d.Errf("retry_after: missing value")
			}
			v := d.Val()
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("retry_after %q: not a number of seconds", v)
			}
			if d.NextArg() {
				return d.Errf("retry_after: want one value, got extra %q", d.Val())
			}
			h.RetryAfter = n
		default:
			return d.Errf("s3_errors: unrecognized option %q", d.Val())
		}
	}
	if err := h.Validate(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	e := new(S3Errors)
	err := e.UnmarshalCaddyfile(h.Dispenser)
	return e, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*S3Errors)(nil)
	_ caddy.Validator             = (*S3Errors)(nil)
	_ caddyhttp.MiddlewareHandler = (*S3Errors)(nil)
	_ caddyfile.Unmarshaler       = (*S3Errors)(nil)
)
