package sessionaffinity

import "strings"

// findQuery scans a raw query string (r.URL.RawQuery) by hand for the first
// non-empty value of a parameter whose decoded name equals one of names;
// names earlier in the list win over later ones, then the first occurrence
// wins. It returns the value still escaped and the index of the matched
// name, or -1. Parsing the query into a map (r.URL.Query()) would allocate
// on every request.
func findQuery(raw string, names []string, fold bool) (string, int) {
	val, idx := "", -1
	for len(raw) > 0 && idx != 0 {
		// split off one parameter, then its name; both with IndexByte,
		// which skips long values (signatures, credentials) fast
		kv := raw
		if j := strings.IndexByte(raw, '&'); j >= 0 {
			kv, raw = raw[:j], raw[j+1:]
		} else {
			raw = ""
		}
		i := strings.IndexByte(kv, '=')
		if i < 0 || i == len(kv)-1 { // no value, or an empty one
			continue
		}
		k, v := kv[:i], kv[i+1:]
		limit := len(names)
		if idx >= 0 {
			limit = idx
		}
		for j := 0; j < limit; j++ {
			if escapedNameEqual(k, names[j], fold) {
				val, idx = v, j
				break
			}
		}
	}
	return val, idx
}

// hasQueryKey reports whether the raw query carries a parameter named
// exactly key (with or without a value), as S3 sends `uploads` and
// `uploadId`.
func hasQueryKey(raw, key string) bool {
	for raw != "" {
		var kv string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			kv, raw = raw[:i], raw[i+1:]
		} else {
			kv, raw = raw, ""
		}
		if len(kv) >= len(key) && kv[:len(key)] == key && (len(kv) == len(key) || kv[len(key)] == '=') {
			return true
		}
	}
	return false
}

// escapedNameEqual compares a raw (possibly percent-encoded) parameter name
// with a configured name, ASCII case-insensitively when fold is set.
// Decoding never lengthens a name, so most names are rejected on length.
func escapedNameEqual(raw, name string, fold bool) bool {
	switch {
	case len(raw) < len(name):
		return false
	case len(raw) == len(name):
		// no room for a %XX escape; only '+' may need decoding
		for i := 0; i < len(raw); i++ {
			c, n := raw[i], name[i]
			if c == '+' {
				c = ' '
			}
			if c != n && (!fold || lower(c) != lower(n)) {
				return false
			}
		}
		// a name with a stray '%' is not decoded: %XX needs three bytes
		return true
	}
	// longer: only %XX escapes can make it equal; a name without '%', or
	// with an invalid escape (compared as sent), is longer than name
	if strings.IndexByte(raw, '%') < 0 || !validEscapes(raw) {
		return false
	}
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if j >= len(name) {
			return false
		}
		n := name[j]
		if c != n && (!fold || lower(c) != lower(n)) {
			return false
		}
		j++
	}
	return j == len(name)
}

// writeUnescaped hashes the query-unescaped form of raw (as
// url.QueryUnescape: %XX decoded, '+' is a space), so `a%62` and `ab` are
// one key. A value with an invalid escape is hashed as sent.
func writeUnescaped(h *keyHasher, raw string) {
	if !needsUnescape(raw) || !validEscapes(raw) {
		h.writeString(raw)
		return
	}
	var buf [128]byte
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		buf[n] = c
		n++
		if n == len(buf) {
			h.write(buf[:])
			n = 0
		}
	}
	h.write(buf[:n])
}

func needsUnescape(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '+' {
			return true
		}
	}
	return false
}

// validEscapes reports whether every '%' in s starts a %XX escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func ishex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// asciiEqualFold compares two strings of equal length ASCII
// case-insensitively (what nginx does for $arg_ names).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
