package sessionaffinity

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refQueryValue is the obvious, allocating reference for findQuery plus
// writeUnescaped: split on '&', decode names and values with
// url.QueryUnescape (as sent when invalid), ASCII case-insensitive names,
// first non-empty value.
func refQueryValue(rawQuery, name string) (string, bool) {
	for _, kv := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			continue
		}
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if !asciiEqualFoldRef(k, name) {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		return v, true
	}
	return "", false
}

func asciiEqualFoldRef(a, b string) bool {
	low := func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return r
	}
	return strings.Map(low, a) == strings.Map(low, b)
}

// FuzzKeyExtraction feeds arbitrary query strings, cookies, header values,
// paths and hosts through every key source: nothing panics, a key is always
// found (the fingerprint ends the chain), the request is untouched, the
// query key equals the reference decoder's, and an S3 upload's create and
// part requests share a key. Run: go test -fuzz FuzzKeyExtraction ./sessionaffinity/
func FuzzKeyExtraction(f *testing.F) {
	f.Add("sessionid=a%62", "sid=x", "h", "/bucket/obj", "bucket.s3.example.com")
	f.Add("SessionId=%zz&uploadId=1", `a=1; sid="q"`, "", "/", "s3.example.com:9000")
	f.Add("+=+&=&&sessionid=+%2B", ";;;", "\x00", "//", "[::1]:9000")

	p := provisioned(f, &SessionAffinitySelection{Salt: "fuzz", Sources: []Source{
		{Type: "query", Names: []string{"sessionid"}},
		{Type: "s3_multipart", Domains: []string{"s3.example.com"}},
		{Type: "header", Names: []string{"X-Session-Id"}},
		{Type: "cookie", Names: []string{"sid", "session"}},
		{Type: "fingerprint", Placeholders: []string{"{http.vars.client_ip}", "{http.request.header.X-Session-Id}", "{http.request.cookie.sid}", "{http.request.uri.query.q}"}},
	}})
	s3Object := provisioned(f, &SessionAffinitySelection{Salt: "fuzz", Sources: []Source{{Type: "s3_multipart"}}})
	pool := newPool(addrs(5)...)

	f.Fuzz(func(t *testing.T, rawQuery, cookie, header, path, host string) {
		r := get("/")
		r.URL.RawQuery = rawQuery
		r.URL.Path = path
		r.Host = host
		r.Header["Cookie"] = []string{cookie}
		r.Header["X-Session-Id"] = []string{header}
		before := r.Clone(r.Context())

		k1, label := p.extract(r)
		require.NotNil(t, label, "the fingerprint always yields a key")
		k2, _ := p.extract(r)
		require.Equal(t, k1, k2, "extraction is deterministic")
		up := p.Select(pool, r, nil)
		require.NotNil(t, up)
		require.Equal(t, before.URL, r.URL)
		require.Equal(t, before.Header, r.Header)
		require.Equal(t, before.Host, r.Host)

		if want, ok := refQueryValue(rawQuery, "sessionid"); ok {
			require.Equal(t, "query:sessionid", label)
			var h keyHasher
			h.reset(p.hashSeed)
			h.writeString(want)
			require.Equal(t, h.sum(), k1, "query value %q decodes like url.QueryUnescape", want)
		} else {
			require.NotEqual(t, "query:sessionid", label)
		}

		if path != "" && path != "/" {
			create := &http.Request{Method: "POST", URL: &url.URL{Path: path, RawQuery: "uploads"}, Header: http.Header{}}
			part := &http.Request{Method: "PUT", URL: &url.URL{Path: path, RawQuery: "partNumber=1&uploadId=" + url.QueryEscape(rawQuery)}, Header: http.Header{}}
			kc, lc := s3Object.extract(create)
			kp, lp := s3Object.extract(part)
			require.NotNil(t, lc)
			require.NotNil(t, lp)
			require.Equal(t, kc, kp, "create and upload part of one object share a key")
		}
	})
}
