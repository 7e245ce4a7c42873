package sessionaffinity

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/cespare/xxhash/v2"
)

// defaultFingerprint keys a client that sends no session key by client IP,
// User-Agent and Accept-Language: the browsers or SDKs behind one NAT
// address still spread over the nodes.
var defaultFingerprint = []string{
	"{http.vars.client_ip}",
	"{http.request.header.User-Agent}",
	"{http.request.header.Accept-Language}",
}

// defaultSources is the default key chain: the session id a client sends
// (sessionid/sessionId), then a multipart upload's id (uploadid/uploadId),
// then the salted fingerprint.
func defaultSources() []Source {
	return []Source{
		{Type: typeQuery, Names: []string{"sessionid"}},
		{Type: typeQuery, Names: []string{"uploadid"}},
		{Type: typeFingerprint},
	}
}

// Provision compiles the key sources, resolves the salt and loads the
// fallback policy.
func (s *SessionAffinitySelection) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if err := s.Validate(); err != nil {
		return err
	}
	srcs := s.Sources
	if len(srcs) == 0 {
		srcs = defaultSources()
	}
	s.sources = make([]source, 0, len(srcs))
	for _, src := range srcs {
		c := compileSource(src)
		if c.kind != kindS3Object {
			c.boundedLoad = s.BoundedLoad
		}
		s.sources = append(s.sources, c)
	}

	salt := caddy.NewReplacer().ReplaceKnown(s.Salt, "")
	if salt == "" {
		s.logger.Warn("session_affinity: no salt configured (or it resolved to empty); " +
			"clients can compute which node their session id or fingerprint maps to; set `salt`, e.g. {env.AFFINITY_SALT}")
	}
	s.hashSeed = xxhash.Sum64String(salt)

	if len(s.Weights) > 0 {
		s.weights = make(map[string]float64, len(s.Weights))
		for addr, w := range s.Weights {
			s.weights[canonAddr(addr)] = float64(w)
		}
	}
	s.addrs = new(addrCache)
	s.responseHeader = http.CanonicalHeaderKey(s.ResponseHeader)
	s.fallbackLabel = any("fallback")

	if s.FallbackRaw == nil {
		s.FallbackRaw = caddyconfig.JSONModuleObject(reverseproxy.RandomSelection{}, "policy", "random", nil)
	}
	mod, err := ctx.LoadModule(s, "FallbackRaw")
	if err != nil {
		return fmt.Errorf("loading fallback selection policy: %v", err)
	}
	s.fallback = mod.(reverseproxy.Selector)
	return nil
}

// compileSource turns a validated Source into its request-time form.
func compileSource(src Source) source {
	var c source
	switch src.Type {
	case typeQuery, typeHeader, typeCookie:
		c.kind = map[string]sourceKind{typeQuery: kindQuery, typeHeader: kindHeader, typeCookie: kindCookie}[src.Type]
		c.fold = src.Type == typeQuery && !src.CaseSensitive
		for _, n := range src.Names {
			if c.kind == kindHeader {
				c.names = append(c.names, http.CanonicalHeaderKey(n))
			} else {
				c.names = append(c.names, n)
			}
			c.labels = append(c.labels, any(src.Type+":"+n))
		}
	case typeS3Multipart:
		c.kind = kindS3
		c.bucketScope = src.Scope == scopeBucket
		for _, d := range src.Domains {
			c.domains = append(c.domains, "."+strings.ToLower(strings.Trim(d, ".")))
		}
		c.labels = []any{typeS3Multipart}
	case typeFingerprint:
		c.kind = kindFingerprint
		phs := src.Placeholders
		if len(phs) == 0 {
			phs = defaultFingerprint
		}
		for _, p := range phs {
			c.parts = append(c.parts, parseComponent(p))
		}
		c.labels = []any{typeFingerprint}
	case typeS3Object:
		c = compileS3Object(src)
	}
	return c
}
