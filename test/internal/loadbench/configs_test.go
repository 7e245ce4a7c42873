package loadbench

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testSites() []Site {
	return []Site{
		{Listen: "127.0.0.1:18080", Upstreams: []string{"127.0.0.1:19101", "127.0.0.1:19102", "127.0.0.1:19103"}},
		{Listen: "127.0.0.1:18081", Upstreams: []string{"127.0.0.1:19201", "127.0.0.1:19202"}},
	}
}

func TestCaddyfilesAdapt(t *testing.T) {
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	tests := []struct {
		name string
		conf string
		want []string // fragments of the JSON
	}{
		{"ours", OursCaddyfile(testSites()), []string{
			`"source":"healthready"`, `"policy":"session_affinity"`, `"salt":"` + Salt + `"`,
			`"127.0.0.1:19202"`, `"listen":["127.0.0.1:18081"]`,
		}},
		{"stock", StockCaddyfile(testSites()), []string{
			`"policy":"query"`, `"key":"sessionid"`, `"uri":"/minio/health/ready"`,
			`"dial":"127.0.0.1:19103"`, `"retries":2`, `"listen":["127.0.0.1:18080"]`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js, warns, err := adapter.Adapt([]byte(tc.conf), map[string]any{"filename": "Caddyfile"})
			require.NoError(t, err, tc.conf)
			assert.Empty(t, warns)
			for _, w := range tc.want {
				assert.Contains(t, string(js), w)
			}
		})
	}
	_, _, err := adapter.Adapt([]byte(strings.Replace(StockCaddyfile(testSites()), "health_interval 3s", "health_interval soon", 1)), nil)
	assert.Error(t, err, "the adapter must refuse a broken Caddyfile")
}

func TestFaultCaddyfilesAdapt(t *testing.T) {
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	sites := testSites()[:1]
	for _, tc := range []struct {
		name string
		conf string
		want []string
	}{
		{"ours adaptive", OursFaultCaddyfile(sites, "adaptive", 5*time.Second), []string{`"protocol":"minio"`, `"try_timeout":5000000000`, `"hedge":"adaptive"`, `"retries":6`, `"hold":15000000000`, `"busy_window":5000000000`}},
		{"ours 50ms", OursFaultCaddyfile(sites, "50ms", 5*time.Second), []string{`"hedge":"50ms"`}},
		{"ours off", OursFaultCaddyfile(sites, "off", 5*time.Second), []string{`"hedge":"off"`}},
		{"stock", StockFaultCaddyfile(sites, 5*time.Second), []string{`"response_header_timeout":5000000000`, `"retries":6`, `"max_fails":1`, `{http.reverse_proxy.status_code} in [502, 503, 504]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, warns, err := adapter.Adapt([]byte(tc.conf), map[string]any{"filename": "Caddyfile"})
			require.NoError(t, err, tc.conf)
			assert.Empty(t, warns)
			for _, w := range tc.want {
				assert.Contains(t, string(js), w)
			}
		})
	}
	// The peers' fault configs change what they should and nothing else.
	ngx := NginxFaultConf("/tmp/x", sites, 5*time.Second)
	for _, want := range []string{"proxy_next_upstream error timeout http_500 http_502 http_503 http_504 http_429;", "proxy_next_upstream_tries 7;", "proxy_read_timeout 5s;", "proxy_send_timeout 5s;", "proxy_connect_timeout 1s;"} {
		assert.Contains(t, ngx, want)
	}
	assert.NotContains(t, ngx, "proxy_connect_timeout 300;")
	hap := HAProxyFaultConf(sites, 5*time.Second)
	for _, want := range []string{"timeout server 5s", "timeout check 1s", "retries 6", "option redispatch 1", "observe layer7 error-limit 1 on-error mark-down"} {
		assert.Contains(t, hap, want)
	}
	assert.NotContains(t, hap, "timeout server 300s")
}
