// Package s3listuploads provides the HTTP handler `s3_list_uploads`
// (module `http.handlers.s3_list_uploads`): it makes a bucket-wide S3
// ListMultipartUploads (`GET /<bucket>?uploads`) complete on a MinIO
// cluster behind Caddy.
//
// MinIO answers that request from the memory of the node asked: it lists
// only the uploads created through that node (checked on MinIO's source,
// erasureServerPools.ListMultipartUploads, and on a real cluster). The
// handler sends the same request, unchanged (method, path, query, Host,
// the client's headers and signature; SigV4 does not bind the node), to
// every node of a healthready pool at once and merges their answers into
// the one S3 would give: the union of the uploads, deduplicated, ordered by
// key then initiation, filtered by prefix, key-marker and upload-id-marker,
// grouped by delimiter, cut to max-uploads (default and maximum 1000) with
// IsTruncated, NextKeyMarker and NextUploadIdMarker, names url-encoded for
// encoding-type=url. The XML and the response headers are those of the
// first node's answer, so a client sees MinIO's answer shape.
//
// If a node of the pool is not routable, does not answer, or answers
// something that is not a listing, the request fails with an S3 error
// (503 ServiceUnavailable) rather than a partial list; a node's own S3
// error (403, 404, 400 ...) is passed on as the node sent it.
//
// Every other request goes to the next handler untouched; telling them
// apart costs one scan of the raw query, without allocating.
package s3listuploads

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(ListUploads{})
}

// Defaults.
const (
	defaultTimeout         = 30 * time.Second
	defaultMaxResponseSize = 64 << 20
	defaultDialTimeout     = 5 * time.Second
)

// ListUploads answers bucket-wide S3 ListMultipartUploads requests from
// every node of a healthready pool; every other request passes through.
type ListUploads struct {
	// The name of the healthready pool whose nodes are asked (its `name`
	// option, e.g. `s3`). Looked up at request time, so a reload that
	// changes the pool is followed. Required.
	Pool string `json:"pool,omitempty"`

	// How long the whole fan-out may take: dialing every node, sending
	// the request and reading every answer. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// The largest answer read from one node, in bytes (MinIO lists every
	// upload a node knows in one answer, ~450 bytes each). A node that
	// sends more fails the listing. Default: 64 MiB.
	MaxResponseSize int64 `json:"max_response_size,omitempty"`

	// The scheme the nodes are reached with, `http` or `https`.
	// Default: http.
	Scheme string `json:"scheme,omitempty"`

	// With scheme https: do not verify the nodes' certificates.
	// Default: false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`

	// With scheme https: the server name (SNI) the certificates are
	// checked against. Default: the node's host.
	TLSServerName string `json:"tls_server_name,omitempty"`

	// S3 endpoint domains of virtual-host style requests: a Host of
	// `<bucket>.<domain>` names the bucket. Default: none (path style).
	Domains []string `json:"domains,omitempty"`

	domains []string // ".domain", lower case
	client  *http.Client
	logger  *zap.Logger

	// upstreams looks the pool up; a test hook, nil means
	// healthready.PoolUpstreams.
	upstreams func(name string) (dials []string, routable []bool, ok bool)
}

// CaddyModule returns the Caddy module information.
func (ListUploads) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.s3_list_uploads",
		New: func() caddy.Module { return new(ListUploads) },
	}
}

// Provision sets the defaults and builds the client that asks the nodes.
func (l *ListUploads) Provision(ctx caddy.Context) error {
	l.logger = ctx.Logger()
	if err := l.Validate(); err != nil {
		return err
	}
	if l.Timeout == 0 {
		l.Timeout = caddy.Duration(defaultTimeout)
	}
	if l.MaxResponseSize == 0 {
		l.MaxResponseSize = defaultMaxResponseSize
	}
	if l.Scheme == "" {
		l.Scheme = "http"
	}
	l.domains = l.domains[:0]
	for _, d := range l.Domains {
		l.domains = append(l.domains, "."+strings.ToLower(strings.Trim(d, ".")))
	}
	tr := &http.Transport{
		Proxy:               nil, // loopback and cluster addresses: never an environment proxy
		DialContext:         (&net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     2 * time.Minute,
		// The client's own Accept-Encoding, if any, is sent as it came;
		// Go must not add one of its own.
		DisableCompression: true,
	}
	if l.Scheme == "https" {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: l.TLSInsecureSkipVerify, ServerName: l.TLSServerName} //nolint:gosec // the operator's choice
	}
	l.client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

// Validate checks the options; each error names the option and its value.
func (l *ListUploads) Validate() error {
	if l.Pool == "" {
		return fmt.Errorf("pool: the name of a healthready pool is required")
	}
	if l.Timeout < 0 {
		return fmt.Errorf("timeout %v: must be positive", time.Duration(l.Timeout))
	}
	if l.MaxResponseSize < 0 {
		return fmt.Errorf("max_response_size %d: must be positive", l.MaxResponseSize)
	}
	switch l.Scheme {
	case "", "http", "https":
	default:
		return fmt.Errorf("scheme %q: must be http or https", l.Scheme)
	}
	if (l.TLSInsecureSkipVerify || l.TLSServerName != "") && l.Scheme != "https" {
		return fmt.Errorf("tls_insecure_skip_verify/tls_server_name: need scheme https, got scheme %q", l.Scheme)
	}
	for _, d := range l.Domains {
		if strings.Trim(d, ".") == "" {
			return fmt.Errorf("domains: empty domain in %q", l.Domains)
		}
	}
	return nil
}

// Cleanup closes the idle connections to the nodes.
func (l *ListUploads) Cleanup() error {
	if l.client != nil {
		l.client.CloseIdleConnections()
	}
	return nil
}

// ServeHTTP answers a bucket-wide ListMultipartUploads itself and passes
// every other request to next.
func (l *ListUploads) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !l.isListUploads(r) {
		return next.ServeHTTP(w, r)
	}
	return l.serveList(w, r)
}

// isListUploads reports whether r is a ListMultipartUploads: a GET of a
// bucket with the `uploads` parameter and no uploadId, without a body. The
// common case (no `uploads` in the query) costs one substring search.
func (l *ListUploads) isListUploads(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	q := r.URL.RawQuery
	// strings.Contains (vectorised) rules out nearly every request before
	// the parameter-by-parameter scan, even with a long presigned query.
	if !strings.Contains(q, "uploads") || !s3op.HasKey(q, "uploads") || s3op.HasKey(q, "uploadId") {
		return false
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return false // a listing has no body; leave anything else to the proxy
	}
	return s3op.Classify(r.Method, r.Host, r.URL.Path, q, l.domains) == s3op.ListUploads
}

// Interface guards
var (
	_ caddy.Provisioner           = (*ListUploads)(nil)
	_ caddy.Validator             = (*ListUploads)(nil)
	_ caddy.CleanerUpper          = (*ListUploads)(nil)
	_ caddyhttp.MiddlewareHandler = (*ListUploads)(nil)
	_ caddyfile.Unmarshaler       = (*ListUploads)(nil)
)
