package healthready

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. Syntax:
//
//	dynamic healthready <upstreams...> {
//	    to <upstreams...>
//	    path <path>
//	    method GET|HEAD
//	    port <port>
//	    probe_to <host:port...>
//	    scheme http|https
//	    tls_insecure_skip_verify
//	    tls_server_name <name>
//	    host <host>
//	    header <name> <value>
//	    interval <duration>
//	    timeout <duration>
//	    rise <n>
//	    fall <n>
//	    concurrency <n>
//	    expect_status <code>
//	    cluster off|write|read
//	    passive_fails <n>
//	    passive_window <duration>
//	    min_ready <n>
//	    name <pool name>
//	}
func (h *HealthReady) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	h.Upstreams = append(h.Upstreams, d.RemainingArgs()...)
	// Where the plain single-value options go.
	strOpts := map[string]*string{"path": &h.Path, "host": &h.Host, "tls_server_name": &h.TLSServerName, "name": &h.Name}
	durOpts := map[string]*caddy.Duration{"interval": &h.Interval, "timeout": &h.Timeout, "passive_window": &h.PassiveWindow}
	intOpts := map[string]*int{
		"port": &h.Port, "rise": &h.Rise, "fall": &h.Fall, "concurrency": &h.Concurrency,
		"expect_status": &h.ExpectStatus, "passive_fails": &h.PassiveFails, "min_ready": &h.MinReady,
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "to":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("to: at least one upstream is required")
			}
			h.Upstreams = append(h.Upstreams, args...)
		case "probe_to":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("probe_to: at least one address is required")
			}
			h.ProbeTo = append(h.ProbeTo, args...)
		case "path", "host", "tls_server_name", "name":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			if opt == "path" && !strings.HasPrefix(v, "/") {
				return d.Errf("path %q: must start with /", v)
			}
			*strOpts[opt] = v
		case "method":
			v, err := enumArg(d, opt, strings.ToUpper, http.MethodGet, http.MethodHead)
			if err != nil {
				return err
			}
			h.Method = v
		case "scheme":
			v, err := enumArg(d, opt, strings.ToLower, "http", "https")
			if err != nil {
				return err
			}
			h.Scheme = v
		case "cluster":
			v, err := enumArg(d, opt, strings.ToLower, "off", "write", "read")
			if err != nil {
				return err
			}
			if v == "off" {
				v = ""
			}
			h.Cluster = v
		case "tls_insecure_skip_verify":
			if d.NextArg() {
				return d.Errf("tls_insecure_skip_verify: takes no value, got %q", d.Val())
			}
			h.TLSInsecureSkipVerify = true
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("header: want <name> <value>, got %d argument(s)", len(args))
			}
			if h.Headers == nil {
				h.Headers = make(http.Header)
			}
			h.Headers.Add(args[0], args[1])
		case "interval", "timeout", "passive_window":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s %q: not a duration: %v", opt, v, err)
			}
			if dur <= 0 {
				return d.Errf("%s %q: must be positive", opt, v)
			}
			*durOpts[opt] = caddy.Duration(dur)
		case "port", "rise", "fall", "concurrency", "expect_status", "passive_fails", "min_ready":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("%s %q: not an integer", opt, v)
			}
			if err := checkIntOption(opt, n); err != "" {
				return d.Errf("%s %q: %s", opt, v, err)
			}
			*intOpts[opt] = n
		default:
			return d.Errf("unrecognized healthready option %q", opt)
		}
	}
	if len(h.Upstreams) == 0 {
		return d.Err("healthready: at least one upstream is required (after 'healthready' or with 'to')")
	}
	return nil
}

// checkIntOption returns why n is not valid for opt, or "".
func checkIntOption(opt string, n int) string {
	switch opt {
	case "port":
		if n < 1 || n > 65535 {
			return "must be 1-65535"
		}
	case "rise", "fall", "concurrency":
		if n < 1 {
			return "must be at least 1"
		}
	case "expect_status":
		if n < 100 || n > 599 {
			return "must be an HTTP status (100-599)"
		}
	case "passive_fails":
		if n < 1 && n != -1 {
			return "must be at least 1 (or -1 to disable)"
		}
	case "min_ready":
		if n < 0 {
			return "must not be negative"
		}
	}
	return ""
}

// enumArg reads the one argument of opt, folded (case), which must be one
// of allowed; the error names the value as written.
func enumArg(d *caddyfile.Dispenser, opt string, fold func(string) string, allowed ...string) (string, error) {
	v, err := oneArg(d, opt)
	if err != nil {
		return "", err
	}
	if f := fold(v); slices.Contains(allowed, f) {
		return f, nil
	}
	last := len(allowed) - 1
	return "", d.Errf("%s %q: must be %s or %s", opt, v, strings.Join(allowed[:last], ", "), allowed[last])
}

// oneArg reads exactly one argument of opt.
func oneArg(d *caddyfile.Dispenser, opt string) (string, error) {
	if !d.NextArg() {
		return "", d.Errf("%s: missing value", opt)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: want one value, got extra %q", opt, d.Val())
	}
	return v, nil
}

var _ caddyfile.Unmarshaler = (*HealthReady)(nil)
