package s3headers

import (
	"net/http"
	"strings"
)

// lowerPrefixed renames, in place, every header field of h whose name starts
// with one of prefixes (ASCII case-insensitively) to its all-lower-case form.
//
// Why lower case: Go's HTTP client canonicalises header names when it parses
// the upstream response (x-amz-meta-mixedcase becomes X-Amz-Meta-Mixedcase),
// and clients such as botocore keep the rest of the name as they received it
// as the user's metadata key. MinIO and AWS S3 always send the user-metadata
// prefixes in lower case, so lower-casing restores the bytes they sent.
//
// prefixes must already be lower case. It allocates nothing when no name
// needs renaming; otherwise one string per renamed name.
func lowerPrefixed(h http.Header, prefixes []string) {
	for name, values := range h {
		if !hasPrefixFold(name, prefixes) {
			continue
		}
		lower := strings.ToLower(name) // returns name itself, unallocated, if already lower case
		if lower == name {
			// Also the case for a name this loop added: the spec lets a
			// range over a map visit keys inserted during the loop.
			continue
		}
		delete(h, name)
		prev, ok := h[lower]
		if !ok {
			h[lower] = values
			continue
		}
		// Both spellings were present (e.g. one set by another handler).
		// Keep the lower-case field's values first and copy, so that the
		// result does not depend on map order nor alias either slice.
		merged := make([]string, 0, len(prev)+len(values))
		merged = append(merged, prev...)
		h[lower] = append(merged, values...)
	}
}

// hasPrefixFold reports whether name starts with any of the lower-case
// prefixes, comparing ASCII letters case-insensitively. Header field names
// are ASCII tokens, so no Unicode folding is needed.
func hasPrefixFold(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if len(name) < len(p) {
			continue
		}
		match := true
		for i := 0; i < len(p); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != p[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
