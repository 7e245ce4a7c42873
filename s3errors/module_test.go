package s3errors

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
	"github.com/minio-lb/caddy-minio-lb/healthready"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type s3Error struct {
	Code, Message, Resource, RequestId string
}

// TestProxyErrorsAreS3Errors: through an in-process Caddy, a reverse_proxy
// whose node cannot be reached answers an S3 error document (502 keeps its
// status, 503 gets Retry-After), HEAD gets the status without a body, and
// an answer that is not an error passes untouched.
func TestProxyErrorsAreS3Errors(t *testing.T) {
	okNode := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<Error><Code>NoSuchKey</Code></Error>")
	}))
	defer okNode.Close()
	port := freeport.Port(t)
	proxy := func(path string, upstreams []any) map[string]any {
		return map[string]any{
			"match": []any{map[string]any{"path": []string{path}}},
			"handle": []any{
				map[string]any{"handler": "s3_errors", "retry_after": 3},
				map[string]any{"handler": "reverse_proxy", "upstreams": upstreams},
			},
		}
	}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s3": map[string]any{
			"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
			"automatic_https": map[string]any{"disable": true},
			"routes": []any{
				proxy("/down/*", []any{map[string]any{"dial": freeport.Addr(t)}}),
				proxy("/none/*", []any{}),
				proxy("/ok/*", []any{map[string]any{"dial": okNode.Listener.Addr().String()}}),
			},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, caddy.Load(raw, true))
	defer func() { _ = caddy.Stop() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	for _, tc := range []struct {
		name, method, path string
		status             int
		code               string
		retryAfter         string
	}{
		{"unreachable node", "GET", "/down/bucket/a<b>&c", 502, "ServiceUnavailable", ""},
		{"no upstream", "PUT", "/none/bucket/key", 503, "ServiceUnavailable", "3"},
		{"HEAD has no body", "HEAD", "/none/bucket/key", 503, "", "3"},
		{"MinIO's own answer", "GET", "/ok/bucket/key", 404, "NoSuchKey", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.retryAfter, resp.Header.Get("Retry-After"))
			if tc.method == "HEAD" {
				assert.Empty(t, body)
				return
			}
			var e s3Error
			require.NoError(t, xml.Unmarshal(body, &e), "%s", body)
			assert.Equal(t, tc.code, e.Code)
			if tc.status >= 500 {
				assert.Equal(t, "application/xml", resp.Header.Get("Content-Type"))
				assert.Equal(t, req.URL.Path, e.Resource, "the resource, XML-escaped in the document")
				assert.NotEmpty(t, e.RequestId)
				assert.NotEmpty(t, e.Message)
			}
		})
	}
}

// TestStartedResponseIsLeftAlone: an error after the response started is
// returned as is (nothing more is written).
func TestStartedResponseIsLeftAlone(t *testing.T) {
	h := S3Errors{RetryAfter: 1}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/b/k", nil)
	wantErr := caddyhttp.Error(http.StatusBadGateway, errors.New("copy failed"))
	err := h.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		return wantErr
	}))
	assert.Equal(t, wantErr, err)
	assert.Equal(t, "partial", rec.Body.String())
}

// TestProxyErrorIsLogged: the error s3_errors answers stays in Caddy's log
// as Caddy would have logged it (level error, with the request), so that an
// operator who sees a 502 in the access log can read why.
func TestProxyErrorIsLogged(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	h := S3Errors{RetryAfter: 1, logger: zap.New(core)}
	r := httptest.NewRequest("HEAD", "/bucket/key?X-Amz-Signature=abc", nil)
	err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		return caddyhttp.Error(http.StatusBadGateway, errors.New("dial tcp 127.0.0.1:9: connect: connection refused"))
	}))
	require.NoError(t, err, "answered: no error goes on to Caddy's own error handling")
	require.Equal(t, 1, logs.Len())
	e := logs.All()[0]
	assert.Equal(t, zap.ErrorLevel, e.Level)
	fields := e.ContextMap()
	assert.EqualValues(t, 502, fields["status"])
	assert.Equal(t, "ServiceUnavailable", fields["code"])
	assert.Contains(t, fields["error"], "connection refused")
	req, ok := fields["request"].(map[string]any)
	require.True(t, ok, "the request is logged: %v", fields)
	assert.Equal(t, "HEAD", req["method"])
	assert.Equal(t, "/bucket/key?X-Amz-Signature=abc", req["uri"])
}

// TestEndedWaitingForANodeIs503: a request whose hold ended without a node
// is answered 503 with Retry-After whatever error Caddy returned (the
// attempt before the wait may have left a 502); without a hold the status
// is the error's.
func TestEndedWaitingForANodeIs503(t *testing.T) {
	for _, tc := range []struct {
		name, hold string
		err        int
		status     int
		code       string
		retryAfter string
	}{
		{"hold ran out after a dial error", healthready.HoldOutcomeTimeout, 502, 503, "ServiceUnavailable", "2"},
		{"hold ran out after a timeout", healthready.HoldOutcomeTimeout, 504, 503, "ServiceUnavailable", "2"},
		{"hold full after a dial error", healthready.HoldOutcomeFull, 502, 503, "SlowDown", "2"},
		{"no hold: the dial error", "", 502, 502, "ServiceUnavailable", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := S3Errors{RetryAfter: 2}
			repl := caddy.NewReplacer()
			if tc.hold != "" {
				repl.Set(healthready.HoldOutcomeKey, tc.hold)
			}
			r := httptest.NewRequest("GET", "/bucket/key", nil)
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
			rec := httptest.NewRecorder()
			err := h.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				return caddyhttp.Error(tc.err, errors.New("dial tcp 127.0.0.1:9: connect: connection refused"))
			}))
			require.NoError(t, err)
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
			var e s3Error
			require.NoError(t, xml.Unmarshal(rec.Body.Bytes(), &e))
			assert.Equal(t, tc.code, e.Code)
		})
	}
}

// TestHoldFullIsSlowDown: a request refused because hold_max requests were
// already waiting is told to slow down.
func TestHoldFullIsSlowDown(t *testing.T) {
	repl := caddy.NewReplacer()
	repl.Set(healthready.HoldOutcomeKey, healthready.HoldOutcomeFull)
	code, _ := describe(http.StatusServiceUnavailable, repl)
	assert.Equal(t, "SlowDown", code)
	repl.Set(healthready.HoldOutcomeKey, healthready.HoldOutcomeTimeout)
	code, _ = describe(http.StatusServiceUnavailable, repl)
	assert.Equal(t, "ServiceUnavailable", code)
}

func TestCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{"s3_errors", 0, ""},
		{"s3_errors {\n retry_after 5\n}", 5, ""},
		{"s3_errors {\n retry_after soon\n}", 0, `retry_after "soon": not a number of seconds`},
		{"s3_errors {\n retry_after 99999\n}", 0, "retry_after 99999: must be 0-3600 seconds"},
		{"s3_errors {\n color blue\n}", 0, `unrecognized option "color"`},
		{"s3_errors now", 0, `unexpected argument "now"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var h S3Errors
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), "Testfile:")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, h.RetryAfter)
		})
	}
}

// BenchmarkPassThrough is the cost on every request that does not fail.
func BenchmarkPassThrough(b *testing.B) {
	h := S3Errors{RetryAfter: 1}
	r := httptest.NewRequest("GET", "/b/k", nil)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, next)
	}
}
