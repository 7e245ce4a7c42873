package s3listuploads

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("s3_list_uploads", parseCaddyfile)
	// Before reverse_proxy: it answers the listings itself and hands
	// everything else on.
	httpcaddyfile.RegisterDirectiveOrder("s3_list_uploads", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	l := new(ListUploads)
	err := l.UnmarshalCaddyfile(h.Dispenser)
	return l, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	s3_list_uploads [<matcher>] [<pool>] {
//	    pool <name>
//	    timeout <duration>
//	    max_response_size <bytes>
//	    scheme http|https
//	    tls_insecure_skip_verify
//	    tls_server_name <name>
//	    domains <domains...>
//	}
//
// The pool is the `name` of a `dynamic healthready` pool, given either as
// the argument or in the block.
func (l *ListUploads) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		l.Pool = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "pool":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if l.Pool != "" {
				return d.Errf("s3_list_uploads: pool: already specified (%q)", l.Pool)
			}
			l.Pool = d.Val()
		case "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("s3_list_uploads: timeout: must be a positive duration, got %q", d.Val())
			}
			l.Timeout = caddy.Duration(dur)
		case "max_response_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.ParseInt(d.Val(), 10, 64)
			if err != nil || n <= 0 {
				return d.Errf("s3_list_uploads: max_response_size: must be a positive number of bytes, got %q", d.Val())
			}
			l.MaxResponseSize = n
		case "scheme":
			if !d.NextArg() {
				return d.ArgErr()
			}
			l.Scheme = d.Val()
		case "tls_insecure_skip_verify":
			l.TLSInsecureSkipVerify = true
		case "tls_server_name":
			if !d.NextArg() {
				return d.ArgErr()
			}
			l.TLSServerName = d.Val()
		case "domains":
			doms := d.RemainingArgs()
			if len(doms) == 0 {
				return d.ArgErr()
			}
			l.Domains = append(l.Domains, doms...)
			continue
		default:
			return d.Errf("s3_list_uploads: unrecognized option %q (known: pool, timeout, max_response_size, scheme, tls_insecure_skip_verify, tls_server_name, domains)", opt)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if err := l.Validate(); err != nil {
		return d.Errf("s3_list_uploads: %v", err)
	}
	return nil
}
