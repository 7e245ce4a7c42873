package sessionaffinity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/internal/proxytrace"
	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
)

// sessionReq is a request carrying session id id.
func sessionReq(id string) *http.Request {
	return get("/bucket/o?sessionid=" + url.QueryEscape(id))
}

// randomIDs returns n distinct-looking session ids from a fixed seed.
func randomIDs(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x%08x", rng.Uint64(), i)
	}
	return ids
}

// assign maps every id to the dial address the policy picks.
func assign(p *SessionAffinitySelection, pool reverseproxy.UpstreamPool, ids []string) map[string]string {
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		if up := p.Select(pool, sessionReq(id), nil); up != nil {
			out[id] = up.Dial
		}
	}
	return out
}

func counts(m map[string]string) map[string]int {
	c := map[string]int{}
	for _, d := range m {
		c[d]++
	}
	return c
}

func TestDeterministicAcrossInstancesAndOrder(t *testing.T) {
	a := addrs(6)
	rev := slices.Clone(a)
	slices.Reverse(rev)
	p1 := provisioned(t, &SessionAffinitySelection{Salt: "s"})
	p2 := provisioned(t, &SessionAffinitySelection{Salt: "s"})
	ids := randomIDs(2000)
	m1 := assign(p1, newPool(a...), ids)
	m2 := assign(p2, newPool(rev...), ids)
	require.Len(t, m1, len(ids))
	assert.Equal(t, m1, m2)
	assert.Len(t, counts(m1), 6, "every node gets keys")
}

func TestDistribution(t *testing.T) {
	p := provisioned(t, &SessionAffinitySelection{Salt: "s"})
	const n, nodes = 60000, 6
	c := counts(assign(p, newPool(addrs(nodes)...), randomIDs(n)))
	require.Len(t, c, nodes)
	mean := float64(n) / nodes
	for dial, got := range c {
		assert.InDelta(t, mean, float64(got), 0.05*mean, "node %s", dial)
	}
}

func TestRemoveAndReAddMovesOnlyThatNodesKeys(t *testing.T) {
	p := provisioned(t, &SessionAffinitySelection{Salt: "s"})
	all := addrs(6)
	ids := randomIDs(12000)
	before := assign(p, newPool(all...), ids)
	removed := all[2]
	after := assign(p, newPool(slices.Delete(slices.Clone(all), 2, 3)...), ids)

	moved := map[string]int{}
	for id, was := range before {
		if was != removed {
			assert.Equal(t, was, after[id], "key %s of a surviving node moved", id)
			continue
		}
		moved[after[id]]++
	}
	orphans := counts(before)[removed]
	require.Positive(t, orphans)
	assert.Len(t, moved, 5, "the removed node's keys spread over every survivor")
	for dial, got := range moved {
		assert.InDelta(t, float64(orphans)/5, float64(got), 0.25*float64(orphans)/5, "survivor %s", dial)
	}
	assert.Equal(t, before, assign(p, newPool(all...), ids), "re-adding the node brings its keys back")
}

func TestWeightsShiftLoad(t *testing.T) {
	a := addrs(4)
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Weights: map[string]int{a[0]: 3, "tcp/" + a[1]: 2}})
	const n = 30000
	c := counts(assign(p, newPool(a...), randomIDs(n)))
	total := 3.0 + 2 + 1 + 1
	for i, w := range []float64{3, 2, 1, 1} {
		want := n * w / total
		assert.InDelta(t, want, float64(c[a[i]]), 0.05*want, "node %s weight %v", a[i], w)
	}
}

func TestRetriesWalkTheRendezvousOrder(t *testing.T) {
	for _, weighted := range []bool{false, true} {
		t.Run(fmt.Sprintf("weighted=%v", weighted), func(t *testing.T) {
			a := addrs(6)
			cfg := &SessionAffinitySelection{Salt: "s"}
			if weighted {
				cfg.Weights = map[string]int{a[0]: 2, a[3]: 5}
			}
			p := provisioned(t, cfg)
			pool := newPool(a...)
			for _, id := range randomIDs(50) {
				r := sessionReq(id)
				order := rendezvousOrder(t, p, pool, r)
				require.Len(t, order, 6)
				assert.ElementsMatch(t, a, order, "every node once, none twice")

				// After all attempts, nothing is left to try.
				markAttempt(r, order[5])
				assert.Nil(t, p.Select(pool, r, nil))

				// The first pick without a previous attempt is order[0];
				// after order[0] failed, order[1], as nginx's next upstream.
				clearAttempts(r)
				assert.Equal(t, order[0], p.Select(pool, r, nil).Dial)
				markAttempt(r, order[0])
				assert.Equal(t, order[1], p.Select(pool, r, nil).Dial)

				// The failed node has left the pool (a dynamic source
				// dropped it): still the next one in the order.
				without := newPool(slices.DeleteFunc(slices.Clone(a), func(s string) bool { return s == order[0] })...)
				assert.Equal(t, order[1], p.Select(without, r, nil).Dial)

				// The key's second node failed and is gone: third.
				markAttempt(r, order[1])
				without = newPool(slices.DeleteFunc(slices.Clone(a), func(s string) bool { return s == order[1] })...)
				assert.Equal(t, order[2], p.Select(without, r, nil).Dial)
			}
		})
	}
}

// fakeLoad gives the bounded-load test control of in-flight counts, which
// Caddy only changes inside its proxy loop.
type fakeLoad map[string]int

func (f fakeLoad) of(up *reverseproxy.Upstream) int { return f[up.Dial] }

// A hostport placeholder left by another reverse_proxy earlier in the route
// (its own clone of the request, its own pool) is not a failed attempt of
// this proxy: Caddy's fresh clone has an empty URL host, so the key's first
// node is picked, not the one after the stale address.
func TestStalePlaceholderIsNotAnAttempt(t *testing.T) {
	a := addrs(6)
	p := provisioned(t, &SessionAffinitySelection{Salt: "s"})
	pool := newPool(a...)
	for _, id := range randomIDs(20) {
		r := sessionReq(id)
		order := rendezvousOrder(t, p, pool, r)
		replacerOf(r).Set(placeholderPrevUpstream, order[0])
		assert.Equal(t, order[0], p.Select(pool, r, nil).Dial, "stale placeholder, first attempt")
		r.URL.Host = order[0] // Caddy sent the attempt to order[0]
		assert.Equal(t, order[1], p.Select(pool, r, nil).Dial, "retry after order[0]")
	}
}

func TestBoundedLoad(t *testing.T) {
	const factor, nodes, reqs = 1.25, 6, 600
	run := func(bounded float64) (maxOverMean float64, load fakeLoad) {
		p := provisioned(t, &SessionAffinitySelection{Salt: "s", BoundedLoad: bounded})
		load = fakeLoad{}
		p.numRequests = load.of
		pool := newPool(addrs(nodes)...)
		ids := randomIDs(20)
		for i := 0; i < reqs; i++ {
			id := ids[0] // 70% of the traffic is one hot session
			if i%10 >= 7 {
				id = ids[1+i%19]
			}
			up := p.Select(pool, sessionReq(id), nil)
			require.NotNil(t, up)
			load[up.Dial]++ // requests stay in flight
			total, most := 0, 0
			for _, v := range load {
				total += v
				most = max(most, v)
			}
			if bounded > 0 {
				require.LessOrEqual(t, most, max(minCapacity, int(math.Ceil(factor*float64(total)/nodes))), "after %d requests", i+1)
			}
			maxOverMean = float64(most) / (float64(total) / nodes)
		}
		return maxOverMean, load
	}
	unbounded, _ := run(0)
	assert.Greater(t, unbounded, 3.0, "without bounded_load the hot session piles onto one node")
	bounded, load := run(factor)
	assert.LessOrEqual(t, bounded, factor+0.01)
	assert.Len(t, load, nodes)
}

func TestRequestIsNotModified(t *testing.T) {
	cases := map[string]*http.Request{
		"query":  get("/bucket/some%20object.bin?X-Amz-Signature=abc&sessionId=a%62+c&X-Amz-Date=20250101T000000Z"),
		"s3":     withHost(get("/some/object.bin?uploadId=x&partNumber=1"), "bucket.s3.example.com"),
		"cookie": withHeader(get("/?x=1"), "Cookie", `a=1; sid="q"`, "X-Session-Id", "h", "User-Agent", "ua"),
	}
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: []Source{
		{Type: "s3_multipart", Domains: []string{"s3.example.com"}},
		{Type: "query", Names: []string{"sessionid"}},
		{Type: "cookie", Names: []string{"sid"}},
		{Type: "header", Names: []string{"x-session-id"}},
		{Type: "fingerprint", Placeholders: []string{"{http.vars.client_ip}", "{http.request.header.user-agent}", "{http.request.cookie.a}", "{http.request.uri.query.x}", "{http.request.method}"}},
	}})
	pool := newPool(addrs(3)...)
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			r.Body = http.NoBody
			snapshot := r.Clone(r.Context())
			rawURI := r.RequestURI
			require.NotNil(t, p.Select(pool, r, httptest.NewRecorder()))
			assert.Equal(t, snapshot.URL, r.URL)
			assert.Equal(t, snapshot.Header, r.Header)
			assert.Equal(t, snapshot.Host, r.Host)
			assert.Equal(t, rawURI, r.RequestURI)
			assert.Equal(t, snapshot.Method, r.Method)
			assert.Equal(t, snapshot.ContentLength, r.ContentLength)
			assert.True(t, snapshot.Body == r.Body, "body replaced")
			assert.Equal(t, snapshot.Trailer, r.Trailer)
		})
	}
}

func TestBadInputNeverPanics(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	var many strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&many, "p%d=v%d&", i, i)
	}
	cases := map[string]*http.Request{
		"invalid escapes":     get("/?sessionid=%zz%4"),
		"lone percent":        get("/?sessionid=%"),
		"invalid name escape": get("/?session%6=a&sessionid%=b"),
		"empty values":        get("/?sessionid=&uploadid=&=&&&="),
		"1 MiB value":         get("/?sessionid=" + big),
		"1 MiB escaped value": get("/?sessionid=" + strings.Repeat("%41", 1<<18)),
		"1 MiB cookie":        withHeader(get("/"), "Cookie", "sid="+big),
		"1 MiB header":        withHeader(get("/"), "X-Session-Id", big),
		"20k parameters":      get("/?" + many.String() + "sessionid=last"),
		"no query":            get("/"),
		"s3 no path":          withHost(get("/?uploads"), ".s3.example.com"),
		"ipv6 client":         caddyRequest("GET", "/", "2001:db8::1", nil),
	}
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: []Source{
		{Type: "s3_multipart", Scope: "bucket", Domains: []string{"s3.example.com"}},
		{Type: "header", Names: []string{"X-Session-Id"}},
		{Type: "cookie", Names: []string{"sid"}},
		{Type: "query", Names: []string{"sessionid", "uploadid"}},
		{Type: "fingerprint"},
	}})
	pool := newPool(addrs(6)...)
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			assert.NotPanics(t, func() { assert.NotNil(t, p.Select(pool, r, nil)) })
		})
	}
	// the invalid escape is hashed as sent: stable, and distinct from
	// what a lenient decoder would make of it
	k1, _ := p.extract(get("/?sessionid=%zz"))
	k2, _ := p.extract(get("/?sessionid=%zz"))
	k3, _ := p.extract(get("/?sessionid=%25zz"))
	assert.Equal(t, k1, k2)
	assert.Equal(t, k1, k3, "%%25zz decodes to the raw bytes %%zz")
	// the last of 20k parameters is still found
	_, label := p.extract(cases["20k parameters"])
	assert.Equal(t, "query:sessionid", label)
}

func TestFallback(t *testing.T) {
	pool := newPool(addrs(4)...)
	assert.Nil(t, provisioned(t, &SessionAffinitySelection{Salt: "s"}).Select(reverseproxy.UpstreamPool{}, get("/?sessionid=a"), nil),
		"an empty pool gives no upstream")

	p := provisioned(t, &SessionAffinitySelection{
		Sources:      []Source{{Type: "query", Names: []string{"sid"}}},
		FallbackRaw:  []byte(`{"policy":"first"}`),
		Placeholders: true,
	})
	r := get("/?other=1")
	assert.Equal(t, pool[0], p.Select(pool, r, nil), "the fallback policy `first` picks")
	v, _ := replacerOf(r).Get(placeholderSource)
	assert.Equal(t, "fallback", v)

	// default fallback: random, but always an available upstream
	p = provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: []Source{{Type: "query", Names: []string{"sid"}}}})
	assert.NotNil(t, p.Select(pool, r, nil))
}

func TestPlaceholdersAndResponseHeader(t *testing.T) {
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Placeholders: true, ResponseHeader: "x-session-id"})
	r := get("/?sessionId=secret-session-value")
	w := httptest.NewRecorder()
	require.NotNil(t, p.Select(newPool(addrs(3)...), r, w))
	repl := replacerOf(r)
	src, _ := repl.GetString(placeholderSource)
	hash, _ := repl.GetString(placeholderKeyHash)
	assert.Equal(t, "query:sessionid", src)
	assert.Regexp(t, "^[0-9a-f]{16}$", hash)
	assert.Equal(t, hash, w.Header().Get("X-Session-Id"))
	assert.NotContains(t, hash+w.Header().Get("X-Session-Id"), "secret")

	// off by default: nothing set
	p = provisioned(t, &SessionAffinitySelection{Salt: "s"})
	r, w = get("/?sessionId=x"), httptest.NewRecorder()
	p.Select(newPool(addrs(3)...), r, w)
	_, ok := replacerOf(r).Get(placeholderKeyHash)
	assert.False(t, ok)
	assert.Empty(t, w.Header())
}

// TestRetryWithTheMinIOTrace: on a retry through the minio transport, the
// request's trace decides: nodes it failed on are skipped; when none is
// left and an attempt timed out (MinIO stalling everywhere on a frozen
// node), the retry goes back to the best node it timed out on instead of
// finding no upstream; other failures are never revisited.
func TestRetryWithTheMinIOTrace(t *testing.T) {
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: exampleChain()})
	nodes := addrs(3)
	pool3, pool2 := newPool(nodes...), newPool(nodes[:2]...)
	for _, tc := range []struct {
		name     string
		pool     reverseproxy.UpstreamPool
		failures []proxytrace.Failure // of the key's first nodes, in its order
		want     int                  // index in the key's order, -1: none
	}{
		{"first timed out: the next node", pool3, []proxytrace.Failure{proxytrace.TimedOut}, 1},
		{"two timed out, a third node left: the third", pool3, []proxytrace.Failure{proxytrace.TimedOut, proxytrace.TimedOut}, 2},
		{"both nodes of the pool timed out: back to the first", pool2, []proxytrace.Failure{proxytrace.TimedOut, proxytrace.TimedOut}, 0},
		{"one timed out, the other failed: back to the one that timed out", pool2, []proxytrace.Failure{proxytrace.Error, proxytrace.TimedOut}, 1},
		{"both failed otherwise: none", pool2, []proxytrace.Failure{proxytrace.Error, proxytrace.Busy}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req("GET", "/b/obj?sessionid=s1")
			order := rendezvousOrder(t, p, tc.pool, r)
			tr := proxytrace.Ensure(r, s3op.Classify(r.Method, r.Host, r.URL.Path, r.URL.RawQuery, nil))
			for i, f := range tc.failures {
				tr.Fail(tr.Add(order[i], false), f)
			}
			r.URL.Host = order[len(tc.failures)-1] // a retry
			up := p.Select(tc.pool, r, nil)
			if tc.want < 0 {
				assert.Nil(t, up)
				return
			}
			require.NotNil(t, up)
			assert.Equal(t, order[tc.want], up.Dial)
		})
	}
}
