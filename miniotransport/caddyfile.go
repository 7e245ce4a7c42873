package miniotransport

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// UnmarshalCaddyfile sets up the transport from Caddyfile tokens:
//
//	transport minio {
//	    try_timeout   <duration>
//	    hedge         off|adaptive|<duration>
//	    hedge_quantile <q>
//	    hedge_min     <duration>
//	    hedge_budget  <fraction>|<percent>%
//	    slow_factor   <factor>|off
//	    replay_body   <size>|off
//	    no_retry_unsent
//	    no_expect
//	    domains       <domains...>
//	    # and every option of `transport http`
//	    <http transport option> ...
//	}
//
// The options of Caddy's HTTP transport are handed to its own parser, so
// they are spelled and checked exactly as for `transport http`.
func (t *Transport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the transport name
	if d.NextArg() {
		return d.ArgErr()
	}
	// Tokens of the HTTP transport's options, re-parsed by its parser as
	// the block of a `transport http`.
	httpTokens := []caddyfile.Token{{Text: "http", File: d.File(), Line: d.Line()}}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "try_timeout", "hedge_min":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s %q: not a duration: %v", opt, v, err)
			}
			if opt == "try_timeout" {
				t.TryTimeout = caddy.Duration(dur)
			} else {
				t.HedgeMin = caddy.Duration(dur)
			}
		case "hedge":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			t.Hedge = strings.ToLower(v)
		case "slow_factor":
			v, off, err := oneArgOrOff(d, opt)
			if err != nil {
				return err
			}
			if off {
				t.SlowFactor = -1
				break
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return d.Errf("%s %q: want a factor (4) or off", opt, v)
			}
			t.SlowFactor = f
		case "replay_body":
			v, off, err := oneArgOrOff(d, opt)
			if err != nil {
				return err
			}
			if off {
				t.ReplayBody = -1
				break
			}
			size, err := humanize.ParseBytes(v)
			if err != nil || size == 0 || size > 1<<40 {
				return d.Errf("%s %q: want a size (256KiB, 1MB) or off", opt, v)
			}
			t.ReplayBody = int64(size)
		case "hedge_quantile":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return d.Errf("%s %q: not a number", opt, v)
			}
			t.HedgeQuantile = f
		case "hedge_budget":
			v, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			num, pct := strings.CutSuffix(v, "%")
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return d.Errf("%s %q: want a fraction (0.05) or a percentage (5%%)", opt, v)
			}
			if pct {
				f /= 100
			}
			t.HedgeBudget = f
		case "no_retry_unsent", "no_expect":
			if d.NextArg() {
				return d.Errf("%s: takes no value, got %q", opt, d.Val())
			}
			if opt == "no_expect" {
				t.NoExpect = true
			} else {
				t.NoRetryUnsent = true
			}
		case "domains":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("%s: at least one domain is required", opt)
			}
			t.Domains = append(t.Domains, args...)
		default:
			// One option of Caddy's HTTP transport, with its nested block.
			seg := d.NextSegment()
			if len(seg) == 0 {
				return d.Errf("unrecognized transport option %q", opt)
			}
			httpTokens = append(httpTokens, seg...)
		}
	}
	if err := t.HTTPTransport.UnmarshalCaddyfile(caddyfile.NewDispenser(wrapBlock(httpTokens))); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return d.Errf("transport minio: %v", err)
	}
	return nil
}

// wrapBlock puts the collected option tokens (after the name token) inside
// braces, one option per line as they were written.
func wrapBlock(tokens []caddyfile.Token) []caddyfile.Token {
	name := tokens[0]
	out := []caddyfile.Token{name, {Text: "{", File: name.File, Line: name.Line}}
	out = append(out, tokens[1:]...)
	last := name
	if len(tokens) > 1 {
		last = tokens[len(tokens)-1]
	}
	return append(out, caddyfile.Token{Text: "}", File: last.File, Line: last.Line + 1})
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

// oneArgOrOff reads the one value of an option that can be switched off
// (slow_factor, replay_body): off reports the word "off", in any case,
// which the caller stores as -1, the JSON spelling of off.
func oneArgOrOff(d *caddyfile.Dispenser, opt string) (v string, off bool, err error) {
	v, err = oneArg(d, opt)
	if err != nil {
		return "", false, err
	}
	return v, strings.EqualFold(v, "off"), nil
}

// normalizeDomains gives domains a leading dot and lower case, as
// s3op.VHostBucket wants them.
func normalizeDomains(domains []string) []string {
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		out = append(out, "."+strings.ToLower(strings.Trim(d, ".")))
	}
	return out
}

var _ caddyfile.Unmarshaler = (*Transport)(nil)
