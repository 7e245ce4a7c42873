package s3headers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxies are the two loopback sites of startCaddy.
type proxies struct {
	ours  string // s3_header_case + reverse_proxy
	stock string // reverse_proxy only
}

// startCaddy runs an in-process Caddy with two HTTP sites proxying to
// upstream: one with s3_header_case (default prefixes) and one without.
func startCaddy(t *testing.T, upstream string) proxies {
	t.Helper()
	p := proxies{ours: freeport.Addr(t), stock: freeport.Addr(t)}
	proxy := map[string]any{
		"handler":   "reverse_proxy",
		"upstreams": []map[string]any{{"dial": upstream}},
	}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
			"ours": map[string]any{
				"listen":          []string{p.ours},
				"automatic_https": map[string]any{"disable": true},
				"routes": []any{map[string]any{"handle": []any{
					map[string]any{"handler": "s3_header_case"}, proxy,
				}}},
			},
			"stock": map[string]any{
				"listen":          []string{p.stock},
				"automatic_https": map[string]any{"disable": true},
				"routes":          []any{map[string]any{"handle": []any{proxy}}},
			},
		}}},
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, caddy.Load(raw, true))
	t.Cleanup(func() { _ = caddy.Stop() })
	return p
}

// rawBackend is an S3-like origin that writes its response bytes itself,
// so the header names are exactly what MinIO puts on the wire (a Go
// net/http server would be just as exact, but this leaves no doubt).
func rawBackend(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(conn)
				for { // read the request header; the requests carry no body
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(conn, response)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCaddyProxyRawBytes(t *testing.T) {
	const origin = "HTTP/1.1 200 OK\r\n" +
		"x-amz-meta-mixedcase: v\r\n" +
		"x-amz-meta-multi: 1\r\n" +
		"x-amz-meta-multi: 2\r\n" +
		"x-minio-meta-extra: e\r\n" +
		"x-amz-request-id: r\r\n" +
		"Content-Length: 2\r\n" +
		"Connection: close\r\n" +
		"\r\n" +
		"ok"
	backend := rawBackend(t, origin)
	p := startCaddy(t, backend)

	tests := []struct {
		name string
		addr string
		want []string // header lines that must be on the wire
		not  []string // header lines that must not
	}{
		{
			name: "direct",
			addr: backend,
			want: []string{"x-amz-meta-mixedcase: v", "x-amz-meta-multi: 1\r\nx-amz-meta-multi: 2", "x-minio-meta-extra: e"},
		},
		{
			name: "stock reverse_proxy canonicalises",
			addr: p.stock,
			want: []string{"X-Amz-Meta-Mixedcase: v", "X-Amz-Meta-Multi: 1\r\nX-Amz-Meta-Multi: 2", "X-Minio-Meta-Extra: e", "X-Amz-Request-Id: r"},
			not:  []string{"x-amz-meta-mixedcase"},
		},
		{
			name: "s3_header_case restores the origin's names",
			addr: p.ours,
			want: []string{"x-amz-meta-mixedcase: v", "x-amz-meta-multi: 1\r\nx-amz-meta-multi: 2", "x-minio-meta-extra: e", "X-Amz-Request-Id: r"},
			not:  []string{"X-Amz-Meta-Mixedcase", "X-Amz-Meta-Multi", "X-Minio-Meta-Extra"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := rawRoundTrip(t, tt.addr, "GET /bucket/object HTTP/1.1\r\nHost: s3.local\r\nConnection: close\r\n\r\n")
			head, body, ok := strings.Cut(raw, "\r\n\r\n")
			require.True(t, ok, raw)
			t.Logf("%s:\n%s", tt.name, head)
			assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), head)
			assert.Equal(t, "ok", body)
			for _, w := range tt.want {
				assert.Contains(t, head, "\r\n"+w+"\r\n")
			}
			for _, n := range tt.not {
				assert.NotContains(t, head, n)
			}
		})
	}

	// The same through Go's own client: it canonicalises on its side, so
	// Go S3 clients (minio-go, aws-sdk-go-v2) see the same map either way.
	for _, addr := range []string{p.ours, p.stock} {
		resp, err := http.Get(fmt.Sprintf("http://%s/bucket/object", addr))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, []string{"1", "2"}, resp.Header.Values("X-Amz-Meta-Multi"), addr)
		assert.Equal(t, "v", resp.Header.Get("X-Amz-Meta-Mixedcase"), addr)
	}
}
