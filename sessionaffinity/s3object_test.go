package sessionaffinity

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exampleChain is the key chain examples/Caddyfile ships: sessionid, S3
// multipart by object, uploadid, S3 object, fingerprint.
func exampleChain() []Source {
	return []Source{
		{Type: "query", Names: []string{"sessionid"}},
		{Type: "s3_multipart", Scope: "object"},
		{Type: "query", Names: []string{"uploadid"}},
		{Type: "s3_object"},
		{Type: "fingerprint"},
	}
}

func req(method, target string) *http.Request {
	return caddyRequest(method, target, "203.0.113.7", http.Header{"User-Agent": {"warp/1.0"}})
}

// TestS3ObjectSource: which requests the s3_object source keys, and on what.
func TestS3ObjectSource(t *testing.T) {
	tests := []struct {
		name      string
		a, b      *http.Request
		wantLabel string // label of a
		same      bool   // a and b have the same key
	}{
		{"GET and PUT of one object meet", req("GET", "/b/dir/o"), req("PUT", "/b/dir/o"), "s3_object", true},
		{"HEAD and DELETE of one object meet", req("HEAD", "/b/dir/o"), req("DELETE", "/b/dir/o"), "s3_object", true},
		{"presigned GET is the same object", req("GET", "/b/dir/o?"+presign), req("GET", "/b/dir/o"), "s3_object", true},
		{"ranged, versioned GET is the same object", req("GET", "/b/o?versionId=v1&response-content-type=x"), req("GET", "/b/o"), "s3_object", true},
		{"other objects, other keys", req("GET", "/b/o1"), req("GET", "/b/o2"), "s3_object", false},
		{"same object name in other buckets differs", req("GET", "/b1/o"), req("GET", "/b2/o"), "s3_object", false},
		{"virtual-host style is the path-style object",
			withHost(req("GET", "/dir/o"), "b.s3.example.com:9000"), req("GET", "/b/dir/o"), "s3_object", true},
		{"different clients, one object: one key",
			caddyRequest("GET", "/b/o", "198.51.100.1", nil), caddyRequest("GET", "/b/o", "198.51.100.2", nil), "s3_object", true},
		{"sessionid wins", req("GET", "/b/o?sessionid=s1"), req("GET", "/b/other?sessionid=s1"), "query:sessionid", true},
		{"multipart create is keyed by s3_multipart", req("POST", "/b/o?uploads"), req("PUT", "/b/o?partNumber=1&uploadId=u"), "s3_multipart", true},
		{"listing falls to the fingerprint", req("GET", "/b?list-type=2&prefix=x"), req("GET", "/b"), "fingerprint", true},
		{"bucket op falls to the fingerprint", req("PUT", "/b"), req("GET", "/b?location"), "fingerprint", true},
		{"object tagging falls to the fingerprint", req("GET", "/b/o?tagging"), req("GET", "/b2"), "fingerprint", true},
		{"multi-object delete falls to the fingerprint", req("POST", "/b?delete"), req("GET", "/"), "fingerprint", true},
		{"POST of an object (no subresource) falls to the fingerprint", req("POST", "/b/o"), req("GET", "/"), "fingerprint", true},
		{"MinIO endpoints fall to the fingerprint", req("GET", "/minio/health/ready"), req("GET", "/"), "fingerprint", true},
	}
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: append(exampleChain()[:3:3],
		Source{Type: "s3_object", Domains: []string{"s3.example.com"}}, Source{Type: "fingerprint"})})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka, la := p.extract(tc.a)
			kb, lb := p.extract(tc.b)
			assert.Equal(t, tc.wantLabel, la)
			assert.Equal(t, la, lb, "b's label")
			if tc.same {
				assert.Equal(t, ka, kb)
			} else {
				assert.NotEqual(t, ka, kb)
			}
		})
	}
}

// TestS3ObjectSpreadsOneClient: one client (one IP, one User-Agent, no
// sessionid) reading 4,000 objects lands on every node about equally with
// the example chain; with the old chain every request is on one node.
func TestS3ObjectSpreadsOneClient(t *testing.T) {
	const nodes, objects = 6, 4000
	pool := newPool(addrs(nodes)...)
	share := func(sources []Source) map[string]int {
		p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: sources})
		count := map[string]int{}
		for i := 0; i < objects; i++ {
			count[p.Select(pool, req("GET", fmt.Sprintf("/backup/obj-%05d", i)), nil).Dial]++
		}
		return count
	}
	old := share([]Source{{Type: "query", Names: []string{"sessionid"}}, {Type: "s3_multipart"},
		{Type: "query", Names: []string{"uploadid"}}, {Type: "fingerprint"}})
	assert.Len(t, old, 1, "old chain: one fingerprint, one node")
	spread := share(exampleChain())
	require.Len(t, spread, nodes)
	for dial, n := range spread {
		assert.InDelta(t, float64(objects)/nodes, float64(n), 0.15*objects/nodes, "node %s", dial)
	}
}

// TestS3ObjectBoundedLoad: object keys spill to the next node of their
// order once a node has its fair share of the requests in flight; session
// and multipart keys never do (no bounded_load on the policy).
func TestS3ObjectBoundedLoad(t *testing.T) {
	const nodes = 4
	pool := newPool(addrs(nodes)...)
	load := fakeLoad{}
	p := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: exampleChain()})
	p.numRequests = load.of

	// Pile 16 requests in flight onto one object's node: at most
	// ceil((in flight+1)/4), but at least 2, may go there, the rest spill:
	// 4/4/4/4.
	obj := req("GET", "/b/hot")
	first := p.Select(pool, obj, nil).Dial
	for i := 0; i < 16; i++ {
		up := p.Select(pool, obj, nil)
		total := 0
		for _, v := range load {
			total += v
		}
		assert.Less(t, load[up.Dial], max(2, int(math.Ceil(float64(total+1)/nodes))), "request %d to %s over capacity", i, up.Dial)
		load[up.Dial]++
	}
	assert.Equal(t, fakeLoad{addrs(4)[0]: 4, addrs(4)[1]: 4, addrs(4)[2]: 4, addrs(4)[3]: 4}, load, "16 in flight over 4 nodes: 4 each")
	assert.Equal(t, 4, load[first])

	// Sequential requests stay on the object's node, also while the
	// previous one is still counted in flight (Caddy counts it until its
	// handler returns, after the client has the answer).
	clear(load)
	for i := 0; i < 5; i++ {
		up := p.Select(pool, obj, nil)
		assert.Equal(t, first, up.Dial)
		load[up.Dial] = 1
	}

	// A factor of 1.25 allows a node 5 of 16 (ceil(1.25*16/4)).
	loose := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: []Source{{Type: "s3_object", BoundedLoad: 1.25}}})
	loose.numRequests = load.of
	clear(load)
	for i := 0; i < 16; i++ {
		load[loose.Select(pool, obj, nil).Dial]++
	}
	assert.Equal(t, 5, load[first])

	// A sessionid and a multipart upload stay on their node whatever the load.
	for _, r := range []*http.Request{req("GET", "/b/hot?sessionid=s1"), req("PUT", "/b/hot?partNumber=2&uploadId=u1")} {
		clear(load)
		home := p.Select(pool, r, nil).Dial
		load[home] = 100
		assert.Equal(t, home, p.Select(pool, r, nil).Dial, "%s %s moved under load", r.Method, r.URL)
	}

	// bounded_load off: the object stays on its node too.
	off := provisioned(t, &SessionAffinitySelection{Salt: "s", Sources: []Source{{Type: "s3_object", BoundedLoad: -1}}})
	off.numRequests = load.of
	clear(load)
	home := off.Select(pool, obj, nil).Dial
	load[home] = 100
	assert.Equal(t, home, off.Select(pool, obj, nil).Dial)

	// The policy's bounded_load does not replace the source's own factor,
	// and applies to the other sources.
	both := provisioned(t, &SessionAffinitySelection{Salt: "s", BoundedLoad: 3,
		Sources: []Source{{Type: "query", Names: []string{"sessionid"}}, {Type: "s3_object", BoundedLoad: 2}}})
	clear(load)
	both.numRequests = load.of
	_, _, b := both.extractKey(obj)
	assert.Equal(t, 2.0, b)
	_, _, b = both.extractKey(req("GET", "/b/hot?sessionid=s1"))
	assert.Equal(t, 3.0, b)
}

func TestS3ObjectValidation(t *testing.T) {
	tests := []struct {
		name    string
		src     Source
		wantErr string
	}{
		{"plain", Source{Type: "s3_object"}, ""},
		{"domains and factor", Source{Type: "s3_object", Domains: []string{"s3.example.com"}, BoundedLoad: 1.5}, ""},
		{"off", Source{Type: "s3_object", BoundedLoad: -1}, ""},
		{"factor 1", Source{Type: "s3_object", BoundedLoad: 1}, ""},
		{"factor 0.5", Source{Type: "s3_object", BoundedLoad: 0.5}, "s3_object: bounded_load must be a factor >= 1 or -1 (off), got 0.5"},
		{"factor -2", Source{Type: "s3_object", BoundedLoad: -2}, "got -2"},
		{"factor +Inf", Source{Type: "s3_object", BoundedLoad: math.Inf(1)}, "got +Inf"},
		{"empty domain", Source{Type: "s3_object", Domains: []string{"."}}, `s3_object: empty domain in ["."]`},
		{"names", Source{Type: "s3_object", Names: []string{"x"}}, "s3_object: names apply to query, header and cookie sources only"},
		{"scope", Source{Type: "s3_object", Scope: "bucket"}, "s3_object: scope applies to s3_multipart sources only"},
		{"bounded_load on fingerprint", Source{Type: "fingerprint", BoundedLoad: 1.5}, "fingerprint: bounded_load applies to s3_object sources only"},
		{"domains on fingerprint", Source{Type: "fingerprint", Domains: []string{"a"}}, "fingerprint: domains apply to s3_multipart and s3_object sources only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := (&SessionAffinitySelection{Sources: []Source{tc.src}}).Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "sources[0]: ")
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestS3ObjectCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    string
		wantErr string
	}{
		{"bare", "session_affinity {\n\ts3_object\n}", `{"sources":[{"type":"s3_object"}]}`, ""},
		{"block", "session_affinity {\n\ts3_object {\n\t\tdomains s3.example.com s3.local\n\t\tbounded_load 1.5\n\t}\n}",
			`{"sources":[{"type":"s3_object","domains":["s3.example.com","s3.local"],"bounded_load":1.5}]}`, ""},
		{"off", "session_affinity {\n\ts3_object {\n\t\tbounded_load off\n\t}\n}", `{"sources":[{"type":"s3_object","bounded_load":-1}]}`, ""},
		{"argument", "session_affinity {\n\ts3_object bucket\n}", "", "wrong argument count"},
		{"bad factor", "session_affinity {\n\ts3_object {\n\t\tbounded_load 0.9\n\t}\n}", "", `s3_object: bounded_load must be a factor >= 1 or off, got "0.9"`},
		{"factor missing", "session_affinity {\n\ts3_object {\n\t\tbounded_load\n\t}\n}", "", "wrong argument count"},
		{"two factors", "session_affinity {\n\ts3_object {\n\t\tbounded_load 2 3\n\t}\n}", "", "wrong argument count"},
		{"unknown option", "session_affinity {\n\ts3_object {\n\t\tscope bucket\n\t}\n}", "", `s3_object: unrecognized option "scope"`},
		{"empty domains", "session_affinity {\n\ts3_object {\n\t\tdomains\n\t}\n}", "", "wrong argument count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p SessionAffinitySelection
			err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), "Testfile:", "error carries file:line")
				return
			}
			require.NoError(t, err)
			got, err := json.Marshal(&p)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

// BenchmarkSelectS3Object: the cost of the example chain for a presigned
// GET without sessionid, before (fingerprint) and after (s3_object with
// its bounded load) issue 12:
//
//	go test -run '^$' -bench SelectS3Object -benchmem ./sessionaffinity/
func BenchmarkSelectS3Object(b *testing.B) {
	old := []Source{{Type: "query", Names: []string{"sessionid"}}, {Type: "s3_multipart", Scope: "object"},
		{Type: "query", Names: []string{"uploadid"}}, {Type: "fingerprint"}}
	for _, n := range []int{4, 6} {
		pool := newPool(addrs(n)...)
		for _, tc := range []struct {
			name    string
			sources []Source
		}{
			{"old_chain_fingerprint", old},
			{"example_chain_s3_object", exampleChain()},
			{"s3_object_bounded_load_off", append(exampleChain()[:3:3], Source{Type: "s3_object", BoundedLoad: -1}, Source{Type: "fingerprint"})},
		} {
			p := provisioned(b, &SessionAffinitySelection{Salt: "bench-salt", Sources: tc.sources})
			r := benchRequest("/bucket/some/object.bin?" + presign)
			b.Run(fmt.Sprintf("upstreams=%d/%s", n, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p.Select(pool, r, nil)
				}
			})
		}
	}
}
