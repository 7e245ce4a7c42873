package loadbench

import (
	"strings"
	"testing"

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
