package healthready

import (
	"net/http"
	"strconv"
	"strings"
	"time"

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
//	    hold <duration>|off
//	    hold_max <n>
//	    busy_window <duration>
//	    name <pool name>
//	}
//
// The parser checks the syntax and the types (integers, durations); the
// values go through Validate's per-option rules at the end of the block,
// whose errors name the file and line that wrote the option. Rules about
// the upstream list (addresses, probe_to, min_ready) apply at load time.
func (h *HealthReady) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	// Where each option was written, for the errors of Validate's rules.
	at := writtenAt{"upstreams": {tok: d.Token()}}
	h.Upstreams = append(h.Upstreams, d.RemainingArgs()...)
	// Where the plain single-value options go.
	strOpts := map[string]*string{"path": &h.Path, "host": &h.Host, "tls_server_name": &h.TLSServerName, "name": &h.Name}
	durOpts := map[string]*caddy.Duration{"interval": &h.Interval, "timeout": &h.Timeout, "passive_window": &h.PassiveWindow,
		"busy_window": &h.BusyWindow}
	intOpts := map[string]*int{
		"port": &h.Port, "rise": &h.Rise, "fall": &h.Fall, "concurrency": &h.Concurrency,
		"expect_status": &h.ExpectStatus, "passive_fails": &h.PassiveFails, "hold_max": &h.HoldMax,
	}
	for seq := 1; d.NextBlock(0); seq++ {
		opt := d.Val()
		at[opt] = written{tok: d.Token(), seq: seq}
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
			*strOpts[opt] = v
		case "method", "scheme", "cluster":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			// Spelled as the JSON config has it; Validate checks the value.
			switch opt {
			case "method":
				h.Method = strings.ToUpper(v)
			case "scheme":
				h.Scheme = strings.ToLower(v)
			default:
				if h.Cluster = strings.ToLower(v); h.Cluster == "off" {
					h.Cluster = ""
				}
			}
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
		case "hold":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			var dur time.Duration
			if v != "off" {
				if dur, err = caddy.ParseDuration(v); err != nil {
					return d.Errf("%s %q: not a duration (or off): %v", opt, v, err)
				}
			}
			hold := caddy.Duration(dur)
			h.Hold = &hold
		case "min_ready":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("%s %q: not an integer", opt, v)
			}
			h.MinReady = &n
		case "interval", "timeout", "passive_window", "busy_window":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s %q: not a duration: %v", opt, v, err)
			}
			*durOpts[opt] = caddy.Duration(dur)
		case "port", "rise", "fall", "concurrency", "expect_status", "passive_fails", "hold_max":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("%s %q: not an integer", opt, v)
			}
			*intOpts[opt] = n
		default:
			return d.Errf("unrecognized healthready option %q", opt)
		}
	}
	return at.check(d, h.optionErrors(at.has))
}

// written is where an option was written: its name's token, and its
// place among the options of the block.
type written struct {
	tok caddyfile.Token
	seq int
}

// writtenAt maps option names to where the block wrote them.
type writtenAt map[string]written

func (at writtenAt) has(option string) bool {
	_, ok := at[option]
	return ok
}

// check reports the violation of the option written first, at the file
// and line that wrote it (a violation of an option the block did not
// write, at the current token).
func (at writtenAt) check(d *caddyfile.Dispenser, errs []*optionError) error {
	if len(errs) == 0 {
		return nil
	}
	first := errs[0]
	for _, e := range errs[1:] {
		if at[e.option].seq < at[first.option].seq {
			first = e
		}
	}
	w, ok := at[first.option]
	if !ok {
		return d.WrapErr(first)
	}
	// A dispenser over the option's token words the error as d.Err does
	// there: "<msg>, at <file>:<line>" and any import chain.
	od := caddyfile.NewDispenser([]caddyfile.Token{w.tok})
	od.Next()
	return od.WrapErr(first)
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
