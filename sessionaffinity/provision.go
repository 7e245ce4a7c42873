package sessionaffinity

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/cespare/xxhash/v2"
)

// defaultFingerprint is the original setup's fingerprint: client IP,
// User-Agent and Accept-Language.
var defaultFingerprint = []string{
	"{http.vars.client_ip}",
	"{http.request.header.User-Agent}",
	"{http.request.header.Accept-Language}",
}

// defaultSources is the original nginx/Lua chain: sessionid/sessionId, then
// uploadid/uploadId, then the salted fingerprint.
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
	for i, src := range srcs {
		c, err := compileSource(src)
		if err != nil {
			return fmt.Errorf("sources[%d]: %v", i, err)
		}
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
	s.seed = xxhash.Sum64String(salt)

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

// Validate checks the options; each error names the option and the value.
func (s *SessionAffinitySelection) Validate() error {
	for i, src := range s.Sources {
		if err := validateSource(src); err != nil {
			return fmt.Errorf("sources[%d]: %v", i, err)
		}
	}
	if s.BoundedLoad != 0 && !(s.BoundedLoad > 1) || math.IsInf(s.BoundedLoad, 0) {
		return fmt.Errorf("bounded_load: must be a factor > 1, got %v", s.BoundedLoad)
	}
	for addr, w := range s.Weights {
		if addr == "" {
			return fmt.Errorf("weights: empty upstream address")
		}
		if w <= 0 {
			return fmt.Errorf("weights: weight of %q must be a positive integer, got %d", addr, w)
		}
	}
	if strings.ContainsAny(s.ResponseHeader, " \t\r\n:") {
		return fmt.Errorf("response_header: invalid header name %q", s.ResponseHeader)
	}
	return nil
}

// validateSource checks one source; shared by JSON provisioning and the
// Caddyfile parser, so both reject the same input with the same words.
func validateSource(src Source) error {
	switch src.Type {
	case typeQuery, typeHeader, typeCookie:
		if len(src.Names) == 0 {
			return fmt.Errorf("%s: at least one name is required", src.Type)
		}
		for _, n := range src.Names {
			if n == "" {
				return fmt.Errorf("%s: empty name in %q", src.Type, src.Names)
			}
		}
	case typeS3Multipart:
		switch src.Scope {
		case "", scopeObject, scopeBucket:
		default:
			return fmt.Errorf("s3_multipart: unknown scope %q (want %q or %q)", src.Scope, scopeObject, scopeBucket)
		}
		for _, d := range src.Domains {
			if strings.Trim(d, ".") == "" {
				return fmt.Errorf("s3_multipart: empty domain in %q", src.Domains)
			}
		}
	case typeFingerprint:
		for _, p := range src.Placeholders {
			if p == "" {
				return fmt.Errorf("fingerprint: empty placeholder in %q", src.Placeholders)
			}
		}
	case typeS3Object:
		if err := validateS3Object(src); err != nil {
			return err
		}
	case "":
		return fmt.Errorf("type: missing source type (want query, header, cookie, s3_multipart, s3_object or fingerprint)")
	default:
		return fmt.Errorf("type: unknown source type %q (want query, header, cookie, s3_multipart, s3_object or fingerprint)", src.Type)
	}
	if err := validateSourceBoundedLoad(src); err != nil {
		return err
	}
	if src.CaseSensitive && src.Type != typeQuery {
		return fmt.Errorf("%s: case_sensitive applies to query sources only", src.Type)
	}
	if src.Scope != "" && src.Type != typeS3Multipart {
		return fmt.Errorf("%s: scope applies to s3_multipart sources only", src.Type)
	}
	if len(src.Domains) > 0 && src.Type != typeS3Multipart && src.Type != typeS3Object {
		return fmt.Errorf("%s: domains apply to s3_multipart and s3_object sources only", src.Type)
	}
	if len(src.Placeholders) > 0 && src.Type != typeFingerprint {
		return fmt.Errorf("%s: placeholders apply to fingerprint sources only", src.Type)
	}
	if len(src.Names) > 0 && (src.Type == typeS3Multipart || src.Type == typeS3Object || src.Type == typeFingerprint) {
		return fmt.Errorf("%s: names apply to query, header and cookie sources only", src.Type)
	}
	return nil
}

func compileSource(src Source) (source, error) {
	if err := validateSource(src); err != nil {
		return source{}, err
	}
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
	return c, nil
}
