package sessionaffinity

import (
	"net/http"
	"strings"
)

// findCookie scans the request's Cookie header lines by hand for the first
// non-empty value of a cookie named (case-sensitively, as net/http does) one
// of names; names earlier in the list win. r.Cookie would parse and allocate
// every cookie of the request. Surrounding double quotes are dropped, as
// net/http does.
func findCookie(h http.Header, names []string) (string, int) {
	val, idx := "", -1
	for _, line := range h["Cookie"] {
		for line != "" && idx != 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimSpace(part)
			name, v, ok := strings.Cut(part, "=")
			if !ok {
				continue
			}
			name = strings.TrimSpace(name)
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v == "" {
				continue
			}
			limit := len(names)
			if idx >= 0 {
				limit = idx
			}
			for j := 0; j < limit; j++ {
				if name == names[j] {
					val, idx = v, j
					break
				}
			}
		}
	}
	return val, idx
}
