package sessionaffinity

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(target string) *http.Request { return caddyRequest("GET", target, "203.0.113.7", nil) }

func withHeader(r *http.Request, kv ...string) *http.Request {
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func withHost(r *http.Request, host string) *http.Request {
	r.Host = host
	return r
}

func TestKeySources(t *testing.T) {
	s3 := func(scope string, domains ...string) []Source {
		return []Source{{Type: "s3_multipart", Scope: scope, Domains: domains}, {Type: "query", Names: []string{"never"}, CaseSensitive: true}}
	}
	tests := []struct {
		name      string
		sources   []Source
		a, b      *http.Request
		wantLabel string // label of a; "" means no source matched (fallback)
		same      bool   // a and b must have the same key
	}{
		{"default chain sessionid matches sessionId", nil, get("/b/o?sessionid=abc"), get("/b/o?sessionId=abc"), "query:sessionid", true},
		{"names match case-insensitively", nil, get("/?SESSIONID=abc"), get("/?sessionid=abc"), "query:sessionid", true},
		{"percent-encoded value", nil, get("/?sessionid=a%62"), get("/?sessionid=ab"), "query:sessionid", true},
		{"plus is a space", nil, get("/?sessionid=a+b"), get("/?sessionid=a%20b"), "query:sessionid", true},
		{"percent-encoded name", nil, get("/?session%69d=ab"), get("/?sessionid=ab"), "query:sessionid", true},
		{"different values differ", nil, get("/?sessionid=ab"), get("/?sessionid=ac"), "query:sessionid", false},
		{"sessionid wins over uploadId whatever the order", nil, get("/?uploadId=u1&sessionid=s1"), get("/?sessionid=s1"), "query:sessionid", true},
		{"uploadId matches uploadid", nil, get("/?partNumber=2&uploadId=u1"), get("/?uploadid=u1"), "query:uploadid", true},
		{"empty sessionid falls through", nil, get("/?sessionid=&uploadId=u1"), get("/?uploadid=u1"), "query:uploadid", true},
		{"first non-empty occurrence wins", nil, get("/?sessionid=&sessionid=x&sessionid=y"), get("/?sessionid=x"), "query:sessionid", true},
		{"no id: fingerprint, same client same key", nil,
			withHeader(get("/b/o"), "User-Agent", "aws-cli/2", "Accept-Language", "en"),
			withHeader(get("/b/other"), "User-Agent", "aws-cli/2", "Accept-Language", "en"), "fingerprint", true},
		{"fingerprint: other user agent, other key", nil,
			withHeader(get("/b/o"), "User-Agent", "aws-cli/2"),
			withHeader(get("/b/o"), "User-Agent", "boto3/1"), "fingerprint", false},
		{"fingerprint: client IP from Caddy's vars, not the socket",
			nil, caddyRequest("GET", "/", "198.51.100.1", nil), caddyRequest("GET", "/", "198.51.100.2", nil), "fingerprint", false},
		{"case_sensitive query ignores other case",
			[]Source{{Type: "query", Names: []string{"sessionId"}, CaseSensitive: true}},
			get("/?sessionid=a"), get("/?sessionid=a"), "", true},
		{"case_sensitive query matches exact name",
			[]Source{{Type: "query", Names: []string{"sessionId"}, CaseSensitive: true}},
			get("/?sessionId=a"), get("/?sessionid=zz&sessionId=a"), "query:sessionId", true},
		{"query names in order of precedence",
			[]Source{{Type: "query", Names: []string{"sid", "session"}}},
			get("/?session=a&sid=b"), get("/?sid=b"), "query:sid", true},
		{"header, canonicalised name, same id as query",
			[]Source{{Type: "header", Names: []string{"x-session-id"}}, {Type: "query", Names: []string{"sessionid"}}},
			withHeader(get("/"), "X-Session-Id", "h1"), get("/?sessionid=h1"), "header:x-session-id", true},
		{"header empty value falls through to next source",
			[]Source{{Type: "header", Names: []string{"X-Session-Id"}}, {Type: "query", Names: []string{"sid"}}},
			withHeader(get("/?sid=q"), "X-Session-Id", ""), get("/?sid=q"), "query:sid", true},
		{"cookie among others, quoted",
			[]Source{{Type: "cookie", Names: []string{"sid"}}},
			withHeader(get("/"), "Cookie", "a=1; sid=xyz; b=2"), withHeader(get("/"), "Cookie", `sid="xyz"`), "cookie:sid", true},
		{"cookie in a second Cookie line",
			[]Source{{Type: "cookie", Names: []string{"sid"}}},
			withHeader(get("/"), "Cookie", "a=1", "Cookie", "sid=xyz"), withHeader(get("/"), "Cookie", "sid=xyz"), "cookie:sid", true},
		{"cookie names in order of precedence",
			[]Source{{Type: "cookie", Names: []string{"sid", "session"}}},
			withHeader(get("/"), "Cookie", "session=a; sid=b"), withHeader(get("/"), "Cookie", "sid=b"), "cookie:sid", true},
		{"cookie names are case-sensitive",
			[]Source{{Type: "cookie", Names: []string{"sid"}}},
			withHeader(get("/"), "Cookie", "SID=b"), get("/"), "", true},
		{"s3 object: create and upload part share a key",
			s3(""), caddyRequest("POST", "/bucket/some/object.bin?uploads", "203.0.113.7", nil),
			caddyRequest("PUT", "/bucket/some/object.bin?partNumber=3&uploadId=2~abc", "203.0.113.8", nil), "s3_multipart", true},
		{"s3 object: complete shares the key",
			s3("object"), caddyRequest("POST", "/bucket/some/object.bin?uploadId=2~abc", "203.0.113.7", nil),
			caddyRequest("DELETE", "/bucket/some/object.bin?uploadId=2~abc", "203.0.113.9", nil), "s3_multipart", true},
		{"s3 object: other object, other key",
			s3(""), get("/bucket/a?uploads"), get("/bucket/b?uploads"), "s3_multipart", false},
		{"s3: not a multipart request",
			s3(""), get("/bucket/a?X-Amz-Date=1"), get("/bucket/a"), "", true},
		{"s3: parameter names are case-sensitive",
			s3(""), get("/bucket/a?uploadid=1"), get("/bucket/a"), "", true},
		{"s3 object: virtual-host style equals path style",
			s3("", "s3.example.com"), withHost(get("/some/object.bin?uploads"), "bucket.s3.example.com:9000"),
			get("/bucket/some/object.bin?uploadId=1"), "s3_multipart", true},
		{"s3 bucket: list uploads shares the key of the bucket's uploads",
			s3("bucket"), get("/bucket?uploads"), get("/bucket/some/object.bin?uploadId=1"), "s3_multipart", true},
		{"s3 bucket: virtual-host style equals path style",
			s3("bucket", "s3.example.com"), withHost(get("/?uploads"), "Bucket.S3.Example.Com"),
			get("/Bucket/x?uploads"), "s3_multipart", true},
		{"s3 bucket: other bucket, other key",
			s3("bucket"), get("/b1/o?uploads"), get("/b2/o?uploads"), "s3_multipart", false},
		{"fingerprint components are separated",
			[]Source{{Type: "fingerprint", Placeholders: []string{"{http.request.header.A}", "{http.request.header.B}"}}},
			withHeader(get("/"), "A", "ab", "B", "c"), withHeader(get("/"), "A", "a", "B", "bc"), "fingerprint", false},
		{"fingerprint cookie and query placeholders",
			[]Source{{Type: "fingerprint", Placeholders: []string{"{http.request.cookie.c}", "{http.request.uri.query.q}"}}},
			withHeader(get("/?q=a%62"), "Cookie", "c=1"), withHeader(get("/?q=ab"), "Cookie", "c=1"), "fingerprint", true},
		{"fingerprint remote host placeholder",
			[]Source{{Type: "fingerprint", Placeholders: []string{"{http.request.remote.host}"}}},
			caddyRequest("GET", "/", "198.51.100.1", nil), caddyRequest("GET", "/", "198.51.100.2", nil), "fingerprint", false},
		{"fingerprint other placeholders through the replacer",
			[]Source{{Type: "fingerprint", Placeholders: []string{"{http.request.method}"}}},
			get("/"), caddyRequest("PUT", "/", "203.0.113.7", nil), "fingerprint", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := provisioned(t, &SessionAffinitySelection{Sources: tc.sources, Salt: "s"})
			ka, la := p.extract(tc.a)
			kb, lb := p.extract(tc.b)
			if tc.wantLabel == "" {
				assert.Nil(t, la, "a must find no key")
				return
			}
			require.NotNil(t, la)
			assert.Equal(t, tc.wantLabel, la)
			require.NotNil(t, lb)
			if tc.same {
				assert.Equal(t, ka, kb)
			} else {
				assert.NotEqual(t, ka, kb)
			}
		})
	}
}

func TestSaltChangesKeys(t *testing.T) {
	r := get("/?sessionid=abc")
	k1, _ := provisioned(t, &SessionAffinitySelection{Salt: "one"}).extract(r)
	k2, _ := provisioned(t, &SessionAffinitySelection{Salt: "two"}).extract(r)
	t.Setenv("AFFINITY_SALT_TEST", "one")
	k3, _ := provisioned(t, &SessionAffinitySelection{Salt: "{env.AFFINITY_SALT_TEST}"}).extract(r)
	assert.NotEqual(t, k1, k2)
	assert.Equal(t, k1, k3, "the env placeholder resolves to the same salt")
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80": "192.0.2.1", "192.0.2.1": "192.0.2.1", "[2001:db8::1]:80": "2001:db8::1",
		"2001:db8::1": "2001:db8::1", "[::1]": "::1", "": "", "@": "@",
	} {
		assert.Equal(t, want, hostOnly(in), in)
	}
}

func TestCanonAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9000": "127.0.0.1:9000", "tcp/127.0.0.1:9000": "127.0.0.1:9000",
		"unix//run/minio.sock": "/run/minio.sock", "[::1]:9000": "[::1]:9000", "tcp6/[::1]:9000": "[::1]:9000",
	} {
		assert.Equal(t, want, canonAddr(in), in)
	}
}
