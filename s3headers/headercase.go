// Package s3headers gives S3 clients the response header names their
// server sent.
//
// Go's HTTP client canonicalises header names when it parses a response, so
// any Go reverse proxy (Caddy included) turns MinIO's
// `x-amz-meta-mixedcase` into `X-Amz-Meta-Mixedcase`. botocore (boto3,
// awscli) builds the object's Metadata map from the raw names, so the user's
// key `mixedcase` comes back as `Mixedcase` (minio/minio#6471,
// versity/versitygw#1484). The `s3_header_case` handler lower-cases the names
// of such headers again before the response leaves Caddy.
package s3headers

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(HeaderCase{})
}

// DefaultPrefixes are the header-name prefixes that MinIO sends in lower
// case for user metadata (MinIO cmd/handler-utils.go userMetadataKeyPrefixes;
// AWS S3 sends x-amz-meta- in lower case too).
var DefaultPrefixes = []string{"x-amz-meta-", "x-minio-meta-"}

// HeaderCase restores the lower-case names of S3 user-metadata response
// headers that a Go proxy canonicalised (`X-Amz-Meta-Mixedcase` back to
// `x-amz-meta-mixedcase`), so clients that key metadata by the raw header
// name (boto3, awscli) see the keys the object was stored with.
//
// Only HTTP/1.x responses are touched: HTTP/2 and HTTP/3 send every header
// name in lower case anyway. Responses without a matching header cost no
// allocation.
type HeaderCase struct {
	// Response header-name prefixes, matched case-insensitively; every
	// header whose name starts with one of them is sent with an all
	// lower-case name. Each must be a non-empty lower-case HTTP token.
	// Default: ["x-amz-meta-", "x-minio-meta-"].
	Prefixes []string `json:"prefixes,omitempty"`

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (HeaderCase) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.s3_header_case",
		New: func() caddy.Module { return new(HeaderCase) },
	}
}

// Provision sets the default prefixes.
func (h *HeaderCase) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if len(h.Prefixes) == 0 {
		h.Prefixes = append([]string(nil), DefaultPrefixes...)
	}
	h.logger.Debug("s3 header case", zap.Strings("prefixes", h.Prefixes))
	return nil
}

// Validate checks that every prefix is a non-empty lower-case token.
func (h *HeaderCase) Validate() error {
	for i, p := range h.Prefixes {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("prefixes[%d]: %w", i, err)
		}
	}
	return nil
}

// checkPrefix accepts a non-empty string of HTTP token characters without
// upper-case letters: the prefix is compared with lower-cased names, so an
// upper-case letter could never match.
func checkPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("empty prefix")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' {
			return fmt.Errorf("prefix %q: must be lower case (%q)", p, strings.ToLower(p))
		}
		if !isTokenChar(c) {
			return fmt.Errorf("prefix %q: byte %q is not allowed in a header name", p, c)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP field name (RFC 9110
// token).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ServeHTTP wraps the response writer so that the header names are fixed
// when the next handler writes the status.
func (h *HeaderCase) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.ProtoMajor >= 2 {
		// HTTP/2 and HTTP/3 put every field name on the wire in lower case.
		return next.ServeHTTP(w, r)
	}
	rw := writerPool.Get().(*responseWriter)
	rw.ResponseWriter = w
	rw.prefixes = h.Prefixes
	rw.wroteHeader = false

	err := next.ServeHTTP(rw, r)

	if err == nil && !rw.wroteHeader {
		// A handler that sets headers but writes nothing gets an implicit
		// 200 from net/http with this header map: fix the names for it too.
		lowerPrefixed(w.Header(), h.Prefixes)
	}
	rw.ResponseWriter = nil
	rw.prefixes = nil
	writerPool.Put(rw)
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*HeaderCase)(nil)
	_ caddy.Validator             = (*HeaderCase)(nil)
	_ caddyhttp.MiddlewareHandler = (*HeaderCase)(nil)
)
