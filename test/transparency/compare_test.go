package transparency

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// volatileHeaders are the response headers whose VALUE differs from one
// request to the next even against the same node, or from one node to
// another (the proxy may pick another node than the direct client), so two
// answers need not agree on them. Their names (and exact case) are still compared.
var volatileHeaders = map[string]string{
	"Date":                  "the second the answer was made",
	"X-Amz-Request-Id":      "MinIO's id of this one request",
	"X-Amz-Id-2":            "the answering node's host id; the proxy may pick another node than the direct client",
	"X-Ratelimit-Remaining": "free slots of MinIO's request queue at that instant",
	"X-Ratelimit-Limit":     "the answering node's request queue size, set from its free memory at start; the proxy may pick another node",
}

// proxyHeaders are added by Caddy's reverse_proxy to every response (and
// are not volatile): the only headers the proxy may add.
var proxyHeaders = map[string]string{
	"Via": "1.1 Caddy", // RFC 9110 §7.6.3; Caddy also drops its own Server header so MinIO's stays
}

// Per-request values inside XML error bodies.
var (
	reRequestID = regexp.MustCompile(`<RequestId>[^<]*</RequestId>`)
	reHostID    = regexp.MustCompile(`<HostId>[^<]*</HostId>`)
)

// observation is what a client can see of one answer, normalised so that
// two answers to the same request agree unless a client could tell them
// apart.
type observation struct {
	Status  int
	Headers []string // "Exact-Name: value", volatile values as <volatile>, sorted
	Body    string   // XML/text bodies verbatim (ids masked), others as a hash
}

// observe normalises r, which came from target t.
func observe(t target, r *rawResponse) observation {
	o := observation{Status: r.Status}
	seen := map[string]int{}
	for _, name := range r.Names {
		canon := canonical(name)
		if _, ok := proxyHeaders[canon]; ok && t.Pid != 0 {
			continue // checked on its own: proxyAdded
		}
		vals := r.Header.Values(canon)
		i := seen[canon]
		seen[canon]++
		v := ""
		if i < len(vals) {
			v = vals[i]
		}
		if _, ok := volatileHeaders[canon]; ok {
			v = "<volatile>"
		}
		o.Headers = append(o.Headers, name+": "+strings.ReplaceAll(v, t.Addr, "{host}"))
	}
	sort.Strings(o.Headers)
	o.Body = normaliseBody(t, r.Body)
	return o
}

func normaliseBody(t target, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) <= 8<<10 && isText(b) {
		s := strings.ReplaceAll(string(b), t.Addr, "{host}")
		s = reRequestID.ReplaceAllString(s, "<RequestId>{id}</RequestId>")
		s = reHostID.ReplaceAllString(s, "<HostId>{id}</HostId>")
		return s
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d bytes, sha256 %s", len(b), hex.EncodeToString(sum[:]))
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x09 || (c > 0x0d && c < 0x20) || c == 0x7f {
			return false
		}
	}
	return true
}

// canonical is textproto's canonical form of a header name.
func canonical(name string) string {
	b := []byte(strings.ToLower(name))
	upper := true
	for i, c := range b {
		if upper && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

// diff lists every way got (through a proxy) differs from want (direct).
// A header that only changed the case of its name is reported as such.
func diff(want, got observation) []string {
	var d []string
	if want.Status != got.Status {
		d = append(d, fmt.Sprintf("status %d, direct %d", got.Status, want.Status))
	}
	left := map[string]int{}
	for _, h := range want.Headers {
		left[h]++
	}
	var extra []string
	for _, h := range got.Headers {
		if left[h] > 0 {
			left[h]--
			continue
		}
		extra = append(extra, h)
	}
	var missing []string
	for _, h := range want.Headers {
		if left[h] > 0 {
			left[h]--
			missing = append(missing, h)
		}
	}
	for _, x := range extra {
		i := indexFold(missing, x)
		if i < 0 {
			d = append(d, "extra or changed header "+quoteHeader(x))
			continue
		}
		d = append(d, fmt.Sprintf("header name `%s` became `%s`", headerName(missing[i]), headerName(x)))
		missing = append(missing[:i], missing[i+1:]...)
	}
	for _, m := range missing {
		d = append(d, "missing or changed header "+quoteHeader(m))
	}
	if want.Body != got.Body {
		d = append(d, fmt.Sprintf("body %q, direct %q", clip(got.Body), clip(want.Body)))
	}
	return d
}

func indexFold(list []string, s string) int {
	for i, x := range list {
		if strings.EqualFold(x, s) && x != s {
			return i
		}
	}
	return -1
}

func headerName(h string) string {
	name, _, _ := strings.Cut(h, ":")
	return name
}

func quoteHeader(h string) string { return "`" + clip(h) + "`" }

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// proxyAdded checks the headers a proxy added: exactly the ones in
// proxyHeaders, with their values.
func proxyAdded(r *rawResponse) []string {
	var d []string
	for canon, want := range proxyHeaders {
		if got := r.Header.Values(canon); len(got) != 1 || got[0] != want {
			d = append(d, fmt.Sprintf("%s %q, want %q", canon, got, want))
		}
	}
	return d
}
