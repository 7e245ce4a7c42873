package s3listuploads

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
	_ "github.com/minio-lb/caddy-minio-lb/healthready"
	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInCaddy runs the directive as an operator writes it, in front of
// reverse_proxy with a healthready pool, in an in-process Caddy: the
// listing is merged from both nodes through the real pool registry; an
// object request goes through reverse_proxy to one node; a node taken out
// of the pool fails the listing with 503.
func TestInCaddy(t *testing.T) {
	n1 := newFakeNode(t, "1", up("a", 1, 0))
	n2 := newFakeNode(t, "2", up("b", 2, 1))
	port := freeport.Port(t)
	cf := fmt.Sprintf(`{
	admin off
	persist_config off
}

http://127.0.0.1:%d {
	reverse_proxy {
		dynamic healthready %s %s {
			name listing-pool
			interval 50ms
			timeout 500ms
			rise 1
			fall 1
		}
		lb_policy first
	}
	s3_list_uploads listing-pool
}
`, port, n1.addr(), n2.addr())
	cfg, warn, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	require.NoError(t, err)
	require.Empty(t, warn)
	require.NoError(t, caddy.Load(cfg, true))
	t.Cleanup(func() { _ = caddy.Stop() })
	assert.Less(t, strings.Index(string(cfg), `"s3_list_uploads"`), strings.Index(string(cfg), `"reverse_proxy"`),
		"ordered before reverse_proxy although written after it")

	c := &http.Client{Timeout: 5 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) (int, string, http.Header) {
		resp, err := c.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b), resp.Header
	}

	code, body, _ := get("/bkt?uploads")
	require.Equal(t, http.StatusOK, code, body)
	res, err := decodeResult([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, keys(res))

	before1, before2 := len(n1.requests()), len(n2.requests())
	code, _, h := get("/bkt/a")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "REQ-1", h.Get("X-Amz-Request-Id"), "lb_policy first: node 1")
	assert.Equal(t, before2, len(n2.requests())-countProbes(n2.requests()[before2:]), "the object request reached node 1 only")
	assert.Greater(t, len(n1.requests()), before1)

	// Node 2's probes fail (its answer turns 503): it leaves the pool and
	// the listing fails rather than list node 1's uploads alone.
	n2.status.Store(http.StatusServiceUnavailable)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body, _ = get("/bkt?uploads")
		if strings.Contains(body, "is not available") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "node 2 of 2 is not available")
}

func countProbes(reqs []*http.Request) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r.URL.Path, "/minio/health/") {
			n++
		}
	}
	return n
}
