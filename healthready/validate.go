package healthready

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// optionError is a rule violation of one option. The rules return it so
// that the Caddyfile parser can point at the line that set the option;
// the message itself names the option and the value, as JSON has no lines.
type optionError struct {
	option string // the option's name, the same in JSON and the Caddyfile
	msg    string
}

func (e *optionError) Error() string { return e.msg }

// Validate checks the config; it is the one place for its rules (the
// Caddyfile parser only parses, then runs these rules). It takes a config
// as written, where a zero value means the default, so it holds before
// Provision applies the defaults and, as Caddy calls it, after.
func (h *HealthReady) Validate() error {
	if errs := h.optionErrors(nil); len(errs) > 0 {
		return errs[0]
	}
	return h.upstreamErrors()
}

// optionErrors checks each option's own value and returns every violation,
// in field order.
//
// written reports whether the config wrote an option out (the Caddyfile
// does); nil means none did. A written zero is a value like any other:
// `fall 0` is an error, while JSON's absent or 0 fall means the default 3
// (JSON cannot tell the two apart).
func (h *HealthReady) optionErrors(written func(option string) bool) []*optionError {
	var errs []*optionError
	bad := func(option, format string, args ...any) {
		errs = append(errs, &optionError{option: option, msg: fmt.Sprintf(format, args...)})
	}
	// given: the option has a value to check, not just "use the default"
	given := func(option string, zero bool) bool {
		return !zero || (written != nil && written(option))
	}
	oneOf := func(option, v string, fold func(string) string, want string, allowed ...string) {
		if given(option, v == "") && !slices.Contains(allowed, fold(v)) {
			bad(option, "%s %q: must be %s", option, v, want)
		}
	}
	atLeast := func(option string, v, min int) {
		if given(option, v == 0) && v < min {
			bad(option, "%s %q: must be at least %d", option, strconv.Itoa(v), min)
		}
	}
	positive := func(option string, v time.Duration) {
		if given(option, v == 0) && v <= 0 {
			bad(option, "%s %q: must be positive", option, v.String())
		}
	}

	if len(h.Upstreams) == 0 {
		bad("upstreams", "upstreams: at least one upstream is required")
	}
	if given("path", h.Path == "") && !strings.HasPrefix(h.Path, "/") {
		bad("path", "path %q: must start with /", h.Path)
	}
	oneOf("method", h.Method, strings.ToUpper, "GET or HEAD", http.MethodGet, http.MethodHead)
	if given("port", h.Port == 0) && (h.Port < 1 || h.Port > 65535) {
		bad("port", "port %q: must be 1-65535", strconv.Itoa(h.Port))
	}
	oneOf("scheme", h.Scheme, strings.ToLower, "http or https", "http", "https")
	positive("interval", time.Duration(h.Interval))
	positive("timeout", time.Duration(h.Timeout))
	atLeast("rise", h.Rise, 1)
	atLeast("fall", h.Fall, 1)
	atLeast("concurrency", h.Concurrency, 1)
	if given("expect_status", h.ExpectStatus == 0) && (h.ExpectStatus < 100 || h.ExpectStatus > 599) {
		bad("expect_status", "expect_status %q: must be an HTTP status (100-599)", strconv.Itoa(h.ExpectStatus))
	}
	// "" is off too: the Caddyfile writes `cluster off` as the default
	oneOf("cluster", h.Cluster, strings.ToLower, "off, write or read", "", "off", "write", "read")
	if given("passive_fails", h.PassiveFails == 0) && h.PassiveFails < 1 && h.PassiveFails != -1 {
		bad("passive_fails", "passive_fails %q: must be at least 1 (or -1 to disable)", strconv.Itoa(h.PassiveFails))
	}
	positive("passive_window", time.Duration(h.PassiveWindow))
	if h.MinReady != nil && *h.MinReady < 0 {
		bad("min_ready", "min_ready %q: must not be negative", strconv.Itoa(*h.MinReady))
	}
	if h.Hold != nil && *h.Hold < 0 {
		bad("hold", "hold %q: must not be negative (0 or off turns holding off)", time.Duration(*h.Hold).String())
	}
	atLeast("hold_max", h.HoldMax, 1)
	positive("busy_window", time.Duration(h.BusyWindow))
	return errs
}

// upstreamErrors checks the upstream addresses and the options that must
// agree with the upstream list or with each other. The Caddyfile parser
// leaves these to load time (`caddy adapt` takes them, `caddy validate`,
// `caddy run` and POST /load refuse them), as it always has.
func (h *HealthReady) upstreamErrors() error {
	seen := make(map[string]bool, len(h.Upstreams))
	for i, u := range h.Upstreams {
		addr, _, err := splitDial(u)
		if err != nil {
			return fmt.Errorf("upstreams[%d] %q: %v", i, u, err)
		}
		if seen[addr] {
			return fmt.Errorf("upstreams[%d] %q: listed twice", i, u)
		}
		seen[addr] = true
	}
	if h.Port > 0 && len(h.ProbeTo) > 0 {
		return fmt.Errorf("port and probe_to: use one of them")
	}
	if len(h.ProbeTo) > 0 {
		if len(h.ProbeTo) != len(h.Upstreams) {
			return fmt.Errorf("probe_to: %d addresses for %d upstreams; give one per upstream, in order", len(h.ProbeTo), len(h.Upstreams))
		}
		for i, a := range h.ProbeTo {
			if _, _, err := splitDial(a); err != nil {
				return fmt.Errorf("probe_to[%d] %q: %v", i, a, err)
			}
		}
	}
	if (h.TLSInsecureSkipVerify || h.TLSServerName != "") && strings.ToLower(h.Scheme) != "https" {
		return fmt.Errorf("tls_insecure_skip_verify/tls_server_name: need scheme https")
	}
	if h.MinReady != nil && *h.MinReady > len(h.Upstreams) {
		return fmt.Errorf("min_ready %q: must be at most the number of upstreams (%d)", strconv.Itoa(*h.MinReady), len(h.Upstreams))
	}
	return nil
}
