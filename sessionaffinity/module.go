// Package sessionaffinity provides the reverse_proxy selection policy
// `session_affinity`: it hashes a session key taken from the request (query
// parameter, header, cookie, S3 multipart object or bucket, or a salted client
// fingerprint) onto the available upstreams with weighted rendezvous hashing,
// so that every request of a session, and every proxy instance with the same
// configuration, picks the same upstream, and retries walk down the key's
// rendezvous order instead of hitting a node this request already tried.
package sessionaffinity

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(SessionAffinitySelection{})
}

// SessionAffinitySelection is a selection policy that keeps the requests of
// one session on one upstream. The key is taken from the first source that
// yields a non-empty value; it is hashed (salted) and mapped to an upstream
// by rendezvous (highest random weight) hashing over the available upstreams,
// keyed on their dial addresses. The request itself is never modified.
type SessionAffinitySelection struct {
	// Key sources, tried in order; the first non-empty value wins.
	// Each source is an object with a `type` of `query`, `header`, `cookie`,
	// `s3_multipart`, `s3_object` or `fingerprint` and the fields of that
	// type. Empty means the default chain: query `sessionid` (matches
	// `sessionId`), then query `uploadid` (matches `uploadId`), then the
	// default fingerprint.
	Sources []Source `json:"sources,omitempty"`

	// Secret that keys every key hash, so clients cannot aim their session
	// ids at a chosen node. Placeholders are resolved once at provision
	// (e.g. `{env.AFFINITY_SALT}`). Default: none (a warning is logged).
	Salt string `json:"salt,omitempty"`

	// Optional weight per upstream dial address (a positive integer, default
	// 1): weighted rendezvous hashing gives an upstream of weight 2 twice the
	// keys of an upstream of weight 1. Weights of addresses that are not in
	// the pool are ignored.
	Weights map[string]int `json:"weights,omitempty"`

	// Optional consistent hashing with bounded loads: a factor > 1, at most
	// 1e9. An upstream is skipped while its in-flight request count is at
	// or above ceil(factor * (total in flight + 1) / available upstreams);
	// the key then goes to the next upstream in its rendezvous order.
	// Applies to the keys of every source except `s3_object`, which has its
	// own. Default: off.
	BoundedLoad float64 `json:"bounded_load,omitempty"`

	// The selection policy used when no source yields a key.
	// Default: `random`.
	FallbackRaw json.RawMessage `json:"fallback,omitempty" caddy:"namespace=http.reverse_proxy.selection_policies inline_key=policy"`

	// Set the placeholders `{http.reverse_proxy.session_affinity.source}`
	// (which source gave the key, e.g. `query:sessionid`, `fingerprint`,
	// `fallback`) and `{http.reverse_proxy.session_affinity.key_hash}` (16 hex
	// digits of the salted key hash, never the raw key) for access logs.
	// Costs a few allocations per request. Default: off.
	Placeholders bool `json:"placeholders,omitempty"`

	// Name of a response header that carries the key hash (16 hex digits,
	// never the raw session id) for debugging. Default: off.
	ResponseHeader string `json:"response_header,omitempty"`

	sources        []source
	hashSeed       uint64 // seed of every key hash, derived from the salt
	weights        map[string]float64
	addrs          *addrCache
	fallback       reverseproxy.Selector
	fallbackLabel  any
	responseHeader string
	logger         *zap.Logger

	// numRequests reports an upstream's in-flight requests; a test hook,
	// nil means (*reverseproxy.Upstream).NumRequests.
	numRequests func(*reverseproxy.Upstream) int
}

// CaddyModule returns the Caddy module information.
func (SessionAffinitySelection) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.selection_policies.session_affinity",
		New: func() caddy.Module { return new(SessionAffinitySelection) },
	}
}

// Source is one key source of the session_affinity policy.
type Source struct {
	// One of `query`, `header`, `cookie`, `s3_multipart`, `s3_object`,
	// `fingerprint`. `s3_object` keys a plain single-object request (GET,
	// HEAD, PUT, DELETE of one object without subresource or multipart
	// parameter) on its bucket and object, so one client's requests spread
	// over the nodes by object; anything else passes to the next source.
	Type string `json:"type"`

	// query, header, cookie: the parameter, header or cookie names, in
	// order of precedence. Required for these types.
	Names []string `json:"names,omitempty"`

	// query only: match names case-sensitively. Default false: `sessionid`
	// also matches `sessionId`, as nginx's $arg_sessionid does.
	CaseSensitive bool `json:"case_sensitive,omitempty"`

	// s3_multipart only: `object` (default) keys multipart requests on the
	// bucket and object path, so create, parts, complete and abort of one
	// upload reach one node; `bucket` keys them on the bucket, which also
	// sends the bucket-wide ListMultipartUploads to that node, at the cost
	// of putting all multipart traffic of a bucket on one node.
	Scope string `json:"scope,omitempty"`

	// s3_multipart and s3_object only: S3 endpoint domains for
	// virtual-host style requests: a Host of `<bucket>.<domain>` names the
	// bucket. Default: none (the bucket is the first path segment).
	Domains []string `json:"domains,omitempty"`

	// s3_object only: the bounded-load factor of this source's keys (see
	// the policy's bounded_load, which it replaces for them): a factor >= 1,
	// or -1 for none. With 1, an object key leaves its node while that node
	// has its fair share, ceil((in flight + 1) / available upstreams), of
	// the requests in flight. Default: 1.
	BoundedLoad float64 `json:"bounded_load,omitempty"`

	// fingerprint only: the placeholders whose values make up the
	// fingerprint. Default: `{http.vars.client_ip}` (the client IP as Caddy
	// determines it with trusted_proxies), `{http.request.header.User-Agent}`,
	// `{http.request.header.Accept-Language}`. Client IP, remote host,
	// request header, cookie and query placeholders are read without
	// allocating; any other placeholder goes through the replacer.
	Placeholders []string `json:"placeholders,omitempty"`
}

// Interface guards
var (
	_ reverseproxy.Selector = (*SessionAffinitySelection)(nil)
	_ caddy.Provisioner     = (*SessionAffinitySelection)(nil)
	_ caddy.Validator       = (*SessionAffinitySelection)(nil)
	_ caddyfile.Unmarshaler = (*SessionAffinitySelection)(nil)
)
