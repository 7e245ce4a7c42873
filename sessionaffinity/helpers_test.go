package sessionaffinity

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/stretchr/testify/require"
)

// newPool builds upstreams the way Caddy's provisioning leaves them: with a
// Host, which Available() and NumRequests() need.
func newPool(addrs ...string) reverseproxy.UpstreamPool {
	pool := make(reverseproxy.UpstreamPool, 0, len(addrs))
	for _, a := range addrs {
		pool = append(pool, &reverseproxy.Upstream{Host: new(reverseproxy.Host), Dial: a})
	}
	return pool
}

// addrs returns n loopback dial addresses.
func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.1:%d", 9101+i)
	}
	return out
}

// provisioned provisions p (JSON-equivalent config) in a bare Caddy context.
func provisioned(t testing.TB, p *SessionAffinitySelection) *SessionAffinitySelection {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	require.NoError(t, p.Provision(ctx))
	return p
}

// caddyRequest builds a request as Caddy's HTTP server hands it to handlers:
// with a replacer and the vars table (client_ip) in its context.
func caddyRequest(method, target, clientIP string, header http.Header) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = clientIP + ":50000"
	for k, v := range header {
		r.Header[k] = v
	}
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
	caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, clientIP)
	return r
}

// markAttempt records, as Caddy's proxy loop does when it sends an attempt,
// that r was proxied to dial: the hostport placeholder and the request URL's
// host (directRequest). The next Select is then a retry.
func markAttempt(r *http.Request, dial string) {
	replacerOf(r).Set(placeholderPrevUpstream, dial)
	r.URL.Host = dial
}

// clearAttempts makes r a first attempt again.
func clearAttempts(r *http.Request) {
	replacerOf(r).Delete(placeholderPrevUpstream)
	r.URL.Host = ""
}

// rendezvousOrder returns the pool's dial addresses in the key's order, by
// asking the policy again and again with the previous pick as the failed
// upstream, as Caddy's retries do.
func rendezvousOrder(t testing.TB, p *SessionAffinitySelection, pool reverseproxy.UpstreamPool, r *http.Request) []string {
	t.Helper()
	defer clearAttempts(r)
	var order []string
	for range pool {
		up := p.Select(pool, r, nil)
		if up == nil {
			break
		}
		order = append(order, up.Dial)
		markAttempt(r, up.Dial)
	}
	return order
}

func newCaddyContext() (caddy.Context, context.CancelFunc) {
	return caddy.NewContext(caddy.Context{Context: context.Background()})
}
