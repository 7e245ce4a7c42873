package sessionaffinity

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// defaultResponseHeader is the header the original setup used.
const defaultResponseHeader = "X-Session-ID"

// UnmarshalCaddyfile sets up the policy from Caddyfile tokens:
//
//	lb_policy session_affinity {
//	    query <names...> [{ case_sensitive }]
//	    header <names...>
//	    cookie <names...>
//	    s3_multipart [object|bucket] [{ domains <domains...> }]
//	    s3_object [{ domains <domains...>; bounded_load <factor>|off }]
//	    fingerprint [<placeholders...>]
//	    salt <value>
//	    weight <dial address> <n>
//	    bounded_load <factor>
//	    fallback <policy> [{ <policy options> }]
//	    placeholders
//	    response_header [<name>]
//	}
//
// Source subdirectives keep their order, which is their precedence. No
// source at all means the default chain.
func (s *SessionAffinitySelection) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume policy name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case typeQuery, typeHeader, typeCookie:
			src := Source{Type: opt, Names: d.RemainingArgs()}
			if len(src.Names) == 0 {
				return d.Errf("%s: at least one name is required", opt)
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if d.Val() != "case_sensitive" || opt != typeQuery {
					return d.Errf("%s: unrecognized option %q", opt, d.Val())
				}
				if d.NextArg() {
					return d.ArgErr()
				}
				src.CaseSensitive = true
			}
			if err := s.addSource(d, src); err != nil {
				return err
			}

		case typeS3Multipart:
			src := Source{Type: opt}
			if d.NextArg() {
				src.Scope = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if d.Val() != "domains" {
					return d.Errf("s3_multipart: unrecognized option %q", d.Val())
				}
				doms := d.RemainingArgs()
				if len(doms) == 0 {
					return d.ArgErr()
				}
				src.Domains = append(src.Domains, doms...)
			}
			if err := s.addSource(d, src); err != nil {
				return err
			}

		case typeS3Object:
			src, err := parseS3Object(d)
			if err != nil {
				return err
			}
			if err := s.addSource(d, src); err != nil {
				return err
			}

		case typeFingerprint:
			src := Source{Type: opt, Placeholders: d.RemainingArgs()}
			if err := s.addSource(d, src); err != nil {
				return err
			}

		case "salt":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if s.Salt != "" {
				return d.Err("salt: already specified")
			}
			s.Salt = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}

		case "weight":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("weight: want <dial address> <n>, got %q", args)
			}
			w, err := strconv.Atoi(args[1])
			if err != nil || w <= 0 {
				return d.Errf("weight: weight of %q must be a positive integer, got %q", args[0], args[1])
			}
			if s.Weights == nil {
				s.Weights = make(map[string]int)
			}
			s.Weights[args[0]] = w

		case "bounded_load":
			if !d.NextArg() {
				return d.ArgErr()
			}
			f, err := strconv.ParseFloat(d.Val(), 64)
			if err != nil || !(f > 1) || f > 1e9 {
				return d.Errf("bounded_load: must be a factor > 1, got %q", d.Val())
			}
			s.BoundedLoad = f
			if d.NextArg() {
				return d.ArgErr()
			}

		case "fallback":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if s.FallbackRaw != nil {
				return d.Err("fallback: selection policy already specified")
			}
			mod, err := loadFallbackPolicy(d)
			if err != nil {
				return err
			}
			s.FallbackRaw = mod

		case "placeholders":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.Placeholders = true

		case "response_header":
			s.ResponseHeader = defaultResponseHeader
			if d.NextArg() {
				s.ResponseHeader = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}

		default:
			return d.Errf("session_affinity: unrecognized option %q", opt)
		}
	}
	if err := s.Validate(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func (s *SessionAffinitySelection) addSource(d *caddyfile.Dispenser, src Source) error {
	if err := validateSource(src); err != nil {
		return d.Err(err.Error())
	}
	s.Sources = append(s.Sources, src)
	return nil
}

// loadFallbackPolicy is reverseproxy's own (unexported) helper: it parses
// `fallback <policy> [{...}]` with that policy's Caddyfile unmarshaler.
func loadFallbackPolicy(d *caddyfile.Dispenser) (json.RawMessage, error) {
	name := d.Val()
	modID := "http.reverse_proxy.selection_policies." + name
	unm, err := caddyfile.UnmarshalModule(d, modID)
	if err != nil {
		return nil, err
	}
	sel, ok := unm.(reverseproxy.Selector)
	if !ok {
		return nil, d.Errf("fallback: module %s (%T) is not a reverseproxy.Selector", modID, unm)
	}
	return caddyconfig.JSONModuleObject(sel, "policy", name, nil), nil
}
