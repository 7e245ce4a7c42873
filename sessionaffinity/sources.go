package sessionaffinity

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Source types.
const (
	typeQuery       = "query"
	typeHeader      = "header"
	typeCookie      = "cookie"
	typeS3Multipart = "s3_multipart"
	typeFingerprint = "fingerprint"
)

// S3 multipart scopes.
const (
	scopeObject = "object"
	scopeBucket = "bucket"
)

type sourceKind uint8

const (
	kindQuery sourceKind = iota
	kindHeader
	kindCookie
	kindS3
	kindFingerprint
	kindS3Object
)

// source is a Source compiled at provision: names canonicalised, labels
// boxed, placeholders parsed into typed components, so that extracting a key
// from a request allocates nothing.
type source struct {
	kind        sourceKind
	names       []string
	fold        bool
	bucketScope bool
	domains     []string // ".domain", lower case
	parts       []component
	labels      []any   // per name (query, header, cookie) or one label
	boundedLoad float64 // bounded-load factor of this source's keys; 0: off
}

// hash writes the source's key for r into h and reports which name matched
// (0 for sources without names), or ok=false when the request carries no
// non-empty key for this source; then nothing was written.
func (s *source) hash(r *http.Request, h *keyHasher) (int, bool) {
	switch s.kind {
	case kindQuery:
		v, idx := findQuery(r.URL.RawQuery, s.names, s.fold)
		if idx < 0 {
			return 0, false
		}
		writeUnescaped(h, v)
		return idx, true
	case kindHeader:
		for j, name := range s.names {
			for _, v := range r.Header[name] {
				if v != "" {
					h.writeString(v)
					return j, true
				}
			}
		}
		return 0, false
	case kindCookie:
		v, idx := findCookie(r.Header, s.names)
		if idx < 0 {
			return 0, false
		}
		h.writeString(v)
		return idx, true
	case kindS3:
		return 0, s.hashS3(r, h)
	case kindS3Object:
		return 0, s.hashS3Object(r, h)
	default:
		for i := range s.parts {
			start := h.n
			s.parts[i].write(r, h)
			h.endComponent(start)
		}
		return 0, true
	}
}

// hashS3 keys S3 multipart requests (those whose query carries `uploads` or
// `uploadId`) on their object path, or on their bucket in bucket scope.
func (s *source) hashS3(r *http.Request, h *keyHasher) bool {
	q := r.URL.RawQuery
	if !hasQueryKey(q, "uploadId") && !hasQueryKey(q, "uploads") {
		return false
	}
	bucket := vhostBucket(r.Host, s.domains)
	path := r.URL.Path
	if s.bucketScope {
		if bucket == "" {
			bucket = strings.TrimPrefix(path, "/")
			if i := strings.IndexByte(bucket, '/'); i >= 0 {
				bucket = bucket[:i]
			}
		}
		if bucket == "" {
			return false
		}
		h.writeString(bucket)
		return true
	}
	if bucket != "" {
		// virtual-host style: the same key as path style /bucket/object
		h.writeByte('/')
		h.writeString(bucket)
	} else if path == "" || path == "/" {
		return false
	}
	h.writeString(path)
	return true
}

// vhostBucket returns the bucket of a virtual-host style request: the part
// of the Host (port dropped) before ".<domain>" for a configured domain.
func vhostBucket(host string, domains []string) string {
	if len(domains) == 0 || host == "" {
		return ""
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	for _, d := range domains {
		if len(host) > len(d) && asciiEqualFold(host[len(host)-len(d):], d) {
			return host[:len(host)-len(d)]
		}
	}
	return ""
}

type componentKind uint8

const (
	compClientIP componentKind = iota
	compRemoteHost
	compHeader
	compCookie
	compQuery
	compReplacer
)

// component is one fingerprint placeholder, parsed at provision.
type component struct {
	kind        componentKind
	names       []string // one name: header (canonical), cookie or query
	placeholder string   // compReplacer only
}

// parseComponent turns a placeholder into a typed extractor; the common
// ones (client IP, remote host, header, cookie, query) read the request
// directly, anything else goes through the request's replacer.
func parseComponent(ph string) component {
	inner, ok := strings.CutPrefix(ph, "{")
	if ok {
		inner, ok = strings.CutSuffix(inner, "}")
	}
	if !ok || inner == "" || strings.ContainsAny(inner, "{}") {
		return component{kind: compReplacer, placeholder: ph}
	}
	switch inner {
	case "http.vars.client_ip", "client_ip":
		return component{kind: compClientIP}
	case "http.request.remote.host", "remote_host":
		return component{kind: compRemoteHost}
	}
	for _, p := range []struct {
		prefix string
		kind   componentKind
	}{
		{"http.request.header.", compHeader},
		{"header.", compHeader},
		{"http.request.cookie.", compCookie},
		{"cookie.", compCookie},
		{"http.request.uri.query.", compQuery},
		{"query.", compQuery},
	} {
		if name, ok := strings.CutPrefix(inner, p.prefix); ok && name != "" {
			if p.kind == compHeader {
				name = http.CanonicalHeaderKey(name)
			}
			return component{kind: p.kind, names: []string{name}}
		}
	}
	return component{kind: compReplacer, placeholder: ph}
}

func (c *component) write(r *http.Request, h *keyHasher) {
	switch c.kind {
	case compClientIP:
		ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
		if ip == "" {
			// outside Caddy's HTTP server there is no client_ip var
			ip = r.RemoteAddr
		}
		h.writeString(hostOnly(ip))
	case compRemoteHost:
		h.writeString(hostOnly(r.RemoteAddr))
	case compHeader:
		// all values joined by commas, as the placeholder shows them
		for i, v := range r.Header[c.names[0]] {
			if i > 0 {
				h.writeByte(',')
			}
			h.writeString(v)
		}
	case compCookie:
		if v, idx := findCookie(r.Header, c.names); idx >= 0 {
			h.writeString(v)
		}
	case compQuery:
		if v, idx := findQuery(r.URL.RawQuery, c.names, false); idx >= 0 {
			writeUnescaped(h, v)
		}
	default:
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			h.writeString(repl.ReplaceKnown(c.placeholder, ""))
		}
	}
}

// hostOnly drops the port of host:port, [v6]:port and [v6]; a bare host or
// IP (v4 or v6) is returned as is. Unlike net.SplitHostPort it never
// allocates, not even for input without a port.
func hostOnly(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
		return addr
	}
	if i := strings.IndexByte(addr, ':'); i >= 0 && strings.LastIndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr
}
