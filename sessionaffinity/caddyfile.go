package sessionaffinity

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// defaultResponseHeader is the header `response_header` without a name sets.
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
// source at all means the default chain. The parser checks the syntax and
// the types (numbers); the values go through Validate's rules at the end
// of the block, whose errors name the file and line that wrote the value.
func (s *SessionAffinitySelection) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume policy name
	if d.NextArg() {
		return d.ArgErr()
	}
	// Where each value was written (configError.at), for the errors of
	// Validate's rules.
	at := make(map[string]written)
	addSource := func(w written, src Source) {
		at["sources["+strconv.Itoa(len(s.Sources))+"]"] = w
		s.Sources = append(s.Sources, src)
	}
	for seq := 1; d.NextBlock(0); seq++ {
		opt, tok := d.Val(), written{tok: d.Token(), seq: seq}
		switch opt {
		case typeQuery, typeHeader, typeCookie:
			src := Source{Type: opt, Names: d.RemainingArgs()}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if d.Val() != "case_sensitive" || opt != typeQuery {
					return d.Errf("%s: unrecognized option %q", opt, d.Val())
				}
				if d.NextArg() {
					return d.ArgErr()
				}
				src.CaseSensitive = true
			}
			addSource(tok, src)

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
			addSource(tok, src)

		case typeS3Object:
			src, err := parseS3Object(d)
			if err != nil {
				return err
			}
			addSource(tok, src)

		case typeFingerprint:
			addSource(tok, Source{Type: opt, Placeholders: d.RemainingArgs()})

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
			if err != nil {
				return d.Errf("weight: weight of %q must be an integer, got %q", args[0], args[1])
			}
			if s.Weights == nil {
				s.Weights = make(map[string]int)
			}
			s.Weights[args[0]] = w
			at[weightKey(args[0])] = tok

		case "bounded_load":
			if !d.NextArg() {
				return d.ArgErr()
			}
			f, err := strconv.ParseFloat(d.Val(), 64)
			if err != nil {
				return d.Errf("bounded_load: want a number, got %q", d.Val())
			}
			s.BoundedLoad = f
			at["bounded_load"] = tok
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
			at["response_header"] = tok
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
	_, written := at["bounded_load"]
	errs := s.configErrors(func(option string) bool { return option == "bounded_load" && written })
	if len(errs) == 0 {
		return nil
	}
	// the violation written first, at the file and line that wrote it
	first := errs[0]
	for _, e := range errs[1:] {
		if at[e.at].seq < at[first.at].seq {
			first = e
		}
	}
	w, ok := at[first.at]
	if !ok {
		return d.WrapErr(first)
	}
	// A dispenser over that token words the error as d.Err does there:
	// "<msg>, at <file>:<line>" and any import chain.
	od := caddyfile.NewDispenser([]caddyfile.Token{w.tok})
	od.Next()
	return od.WrapErr(first)
}

// written is where the Caddyfile wrote a value: the token of its
// subdirective, and its place among the block's subdirectives.
type written struct {
	tok caddyfile.Token
	seq int
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
