package s3headers

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("s3_header_case", parseCaddyfile)
	// Before `header`: a handler ordered earlier wraps the writer outside
	// the later ones, so its WriteHeader runs last. `header` operations
	// (which name fields canonically) apply first, then the names are
	// lower-cased, and the directive is in place well before reverse_proxy.
	httpcaddyfile.RegisterDirectiveOrder("s3_header_case", httpcaddyfile.Before, "header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hc := new(HeaderCase)
	err := hc.UnmarshalCaddyfile(h.Dispenser)
	return hc, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	s3_header_case [<matcher>] {
//	    prefix <prefix...>
//	}
//
// `prefix` may be given more than once; the lists add up. Without it the
// default prefixes (x-amz-meta-, x-minio-meta-) apply.
func (h *HeaderCase) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("s3_header_case: unexpected argument %q (prefixes go in a block: prefix <prefix...>)", d.Val())
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "prefix":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("s3_header_case: prefix: needs at least one value")
			}
			for _, p := range args {
				if err := checkPrefix(p); err != nil {
					return d.Errf("s3_header_case: prefix: %v", err)
				}
			}
			h.Prefixes = append(h.Prefixes, args...)
		default:
			return d.Errf("s3_header_case: unknown option %q (known: prefix)", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*HeaderCase)(nil)
