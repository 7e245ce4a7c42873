package sessionaffinity

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxBoundedLoad is the largest bounded_load factor. A larger one bounds
// nothing (an upstream would need a billion requests in flight per
// upstream to reach its capacity), and the capacity arithmetic converts to
// int, which a factor near the float range would overflow.
const maxBoundedLoad = 1e9

// configError is a rule violation. The rules return it so that the
// Caddyfile parser can point at the line that wrote the offending value;
// the message itself names the option and the value, as JSON has no lines.
type configError struct {
	at  string // what was wrong: "sources[1]", "bounded_load", weightKey(addr), "response_header"
	msg string
}

func (e *configError) Error() string { return e.msg }

// weightKey is configError.at of the weight of addr.
func weightKey(addr string) string { return "weights[" + strconv.Quote(addr) + "]" }

// Validate checks the options; it is the one place for their rules (the
// Caddyfile parser only parses, then runs these rules). Each error names
// the option and the value.
func (s *SessionAffinitySelection) Validate() error {
	if errs := s.configErrors(nil); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// configErrors returns every rule violation, in field order.
//
// written reports whether the config wrote an option out (the Caddyfile
// does); nil means none did. A written zero is a value like any other:
// `bounded_load 0` is an error, while JSON's absent or 0 bounded_load
// means off (JSON cannot tell the two apart).
func (s *SessionAffinitySelection) configErrors(written func(option string) bool) []*configError {
	var errs []*configError
	bad := func(at, format string, args ...any) {
		errs = append(errs, &configError{at: at, msg: fmt.Sprintf(format, args...)})
	}
	for i, src := range s.Sources {
		if err := validateSource(src); err != nil {
			at := "sources[" + strconv.Itoa(i) + "]"
			bad(at, "%s: %v", at, err)
		}
	}
	if f := s.BoundedLoad; f != 0 || (written != nil && written("bounded_load")) {
		// negated, so that NaN fails too
		if !(f > 1 && f <= maxBoundedLoad) {
			bad("bounded_load", "bounded_load: must be a factor > 1 and at most 1e9, got %q", strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	addrs := make([]string, 0, len(s.Weights))
	for addr := range s.Weights {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs) // the same error first on every run
	for _, addr := range addrs {
		if addr == "" {
			bad(weightKey(addr), "weights: empty upstream address")
		} else if w := s.Weights[addr]; w <= 0 {
			bad(weightKey(addr), "weights: weight of %q must be a positive integer, got %q", addr, strconv.Itoa(w))
		}
	}
	if strings.ContainsAny(s.ResponseHeader, " \t\r\n:") {
		bad("response_header", "response_header: invalid header name %q", s.ResponseHeader)
	}
	return errs
}

// validateSource checks one source.
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
