// Package spread measures how one heavy S3 client (one host, one
// User-Agent, 16 connections, GETs and PUTs of many objects, no sessionid)
// spreads over a real 4-node MinIO cluster behind the custom Caddy, each
// node behind a bandwidth-capped faultproxy standing in for its NIC, for
// the key chains an operator can choose and for least_conn:
//
//	cd test && go test -race -count=1 -v -run HeavyClient ./spread/
//
// By default it runs the old chain, the new default and least_conn, 3
// interleaved repetitions of 4 s per cell: MinIO at 100 and 10 MiB/s per
// node, fast backends at 100 MiB/s per node (25 under -race). The documentation's numbers
// (docs/s3-multipart-and-spread.md) come from every policy, longer cells
// and more caps:
//
//	HEAVY_POLICIES=all HEAVY_CAPS=100,25,10 HEAVY_FAST_CAPS=100,25 HEAVY_DURATION=10s HEAVY_REPEAT=3 \
//	  go test -count=1 -v -run HeavyClient -timeout 60m ./spread/
package spread

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
	"github.com/minio-lb/caddy-minio-lb/test/internal/faultproxy"
	"github.com/minio-lb/caddy-minio-lb/test/internal/loadbench"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// policy is one load-balancing choice, written into examples/Caddyfile in
// place of its lb_policy block. noSlowAvoid also turns off the minio
// transport's slow-node avoidance (slow_factor), which did not exist
// either when the old chain shipped: a node carrying a heavy client alone
// answers slower than idle ones, and moving its reads away would hide what
// the old chain did.
type policy struct {
	name, block string
	noSlowAvoid bool
}

const affinityTail = `				salt {env.AFFINITY_SALT}
				placeholders
			}`

var policies = []policy{
	{"old: fingerprint (shipped before issue 12)", `lb_policy session_affinity {
				query sessionid
				s3_multipart object
				query uploadid
				fingerprint
` + affinityTail, true},
	{"fingerprint + bounded_load 1.25", `lb_policy session_affinity {
				query sessionid
				s3_multipart object
				query uploadid
				fingerprint
				bounded_load 1.25
` + affinityTail, false},
	{"s3_object, bounded_load off", `lb_policy session_affinity {
				query sessionid
				s3_multipart object
				query uploadid
				s3_object {
					bounded_load off
				}
				fingerprint
` + affinityTail, false},
	{"s3_object, bounded_load 1.25", `lb_policy session_affinity {
				query sessionid
				s3_multipart object
				query uploadid
				s3_object {
					bounded_load 1.25
				}
				fingerprint
` + affinityTail, false},
	{"new default: s3_object (bounded_load 1)", `lb_policy session_affinity {
				query sessionid
				s3_multipart object
				query uploadid
				s3_object
				fingerprint
` + affinityTail, false},
	{"least_conn", `lb_policy least_conn`, false},
}

// Indexes into policies.
const (
	polOld       = 0
	polNew       = 4
	polLeastConn = 5
)

var lbPolicyBlock = regexp.MustCompile(`(?s)lb_policy session_affinity \{.*?\n\t\t\t\}`)

// withPolicy is examples/Caddyfile with its S3 lb_policy block replaced.
func withPolicy(t *testing.T, example string, p policy) string {
	t.Helper()
	require.Len(t, lbPolicyBlock.FindAllString(example, -1), 1, "examples/Caddyfile has one session_affinity block")
	out := lbPolicyBlock.ReplaceAllLiteralString(example, p.block)
	if p.noSlowAvoid {
		require.Equal(t, 1, strings.Count(out, "\t\t\t\thedge adaptive\n"), "examples/Caddyfile's transport minio hedges")
		out = strings.Replace(out, "\t\t\t\thedge adaptive\n", "\t\t\t\thedge adaptive\n\t\t\t\tslow_factor off\n", 1)
	}
	return out
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, name)
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

// target is one Caddy running one policy.
type target struct {
	pol   policy
	caddy *caddyproc.Caddy
	addr  string
	op    loadbench.Op
	seen  map[string]int // access log requests per upstream, counted so far
}

// cell is one (policy, bandwidth) measurement over the repetitions.
type cell struct {
	runs     []loadbench.Result
	requests [][]int64 // per run, per node (access log)
	bytes    [][]int64 // per run, per node (faultproxy)
}

func (c *cell) medianMiBps() float64 {
	var xs []float64
	for _, r := range c.runs {
		xs = append(xs, float64(r.Bytes)/r.Elapsed.Seconds()/(1<<20))
	}
	return loadbench.Median(xs)
}

func (c *cell) shares() loadbench.Shares {
	sum := make([]int64, 4)
	for _, per := range c.requests {
		for i, n := range per {
			sum[i] += n
		}
	}
	return loadbench.NodeShares(sum)
}

func (c *cell) byteShares() loadbench.Shares {
	sum := make([]int64, 4)
	for _, per := range c.bytes {
		for i, n := range per {
			sum[i] += n
		}
	}
	return loadbench.NodeShares(sum)
}

func (c *cell) errors() (errs, total int) {
	for _, r := range c.runs {
		errs += r.Errors
		total += r.Requests
	}
	return errs, total
}

// TestHeavyClient: the heavy client through each policy, against a real
// 4-node MinIO cluster (caps 100 and 10 MiB/s per node) and against 4 fast
// backends (cap 100 MiB/s per node), each node behind its capped link.
// Asserted, for every cap: the old chain puts everything on one node; the
// new default keeps every node under 1.5x the mean share of requests; no
// request fails. Where the links are what limits throughput (the old
// chain, on one link, gets at most 0.6x of least_conn), the new default's
// throughput against least_conn's is reported (a speed goal: the table in
// docs/s3-multipart-and-spread.md has the numbers). On this
// 2-core machine the machine, not a 100 MiB/s link, bounds the MinIO
// cluster (100-170 MiB/s in total, less while other work runs), so the
// 100 MiB/s target is checked with the fast backends (25 MiB/s links under
// -race, which slows the in-process client and links).
func TestHeavyClient(t *testing.T) {
	dur := envDuration(t, "HEAVY_DURATION", 4*time.Second)
	repeat := envInt(t, "HEAVY_REPEAT", 3)
	pols := []policy{policies[polOld], policies[polNew], policies[polLeastConn]}
	if os.Getenv("HEAVY_POLICIES") == "all" {
		pols = policies
	}
	t.Run("MinIO", func(t *testing.T) {
		caps := envCaps(t, "HEAVY_CAPS", []int64{100, 10})
		c := miniocluster.StartT(t, miniocluster.Options{})
		user, pass := c.Credentials()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		require.NoError(t, loadbench.PrepareHeavy(ctx, c.Node(0).S3Addr(), user, pass))
		runHeavy(t, "MinIO", c.S3Addrs(), user, pass, caps, pols, dur, repeat, false)
	})
	t.Run("FastNodes", func(t *testing.T) {
		// The client and the links run in this test binary: under the
		// race detector they move a few times less, and 100 MiB/s links
		// would not be the bottleneck (seen: least_conn 146 MiB/s at a
		// load average of 30); 25 MiB/s links still are.
		def := []int64{100}
		if raceEnabled {
			def = []int64{25}
		}
		caps := envCaps(t, "HEAVY_FAST_CAPS", def)
		var nodes []string
		for i := 0; i < 4; i++ {
			b, err := loadbench.StartBackend(i, "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(b.Close)
			nodes = append(nodes, b.Addr)
		}
		runHeavy(t, "fast nodes", nodes, "heavy-client", "heavy-client-secret", caps, pols, dur, repeat, true)
	})
}

// envCaps reads a comma-separated list of MiB/s per node.
func envCaps(t *testing.T, name string, def []int64) []int64 {
	v := os.Getenv(name)
	var out []int64
	if v == "" {
		for _, d := range def {
			out = append(out, d<<20)
		}
		return out
	}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(t, err, "%s: MiB/s per node, comma-separated", name)
		out = append(out, int64(n)<<20)
	}
	return out
}

// runHeavy puts each node behind a faultproxy link, starts one Caddy per
// policy (examples/Caddyfile with its lb_policy replaced, the links as the
// S3 pool), runs the heavy client through each, interleaved, for every
// cap, prints the table and checks what a user checks. mustBind: the
// largest cap must be link-bound (the fast backends at 100 MiB/s).
func runHeavy(t *testing.T, backend string, nodes []string, user, pass string, caps []int64, pols []policy, dur time.Duration, repeat int, mustBind bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var fps []*faultproxy.Proxy
	var fpAddrs []string
	for _, n := range nodes {
		fp := faultproxy.StartT(t, n)
		fps = append(fps, fp)
		fpAddrs = append(fpAddrs, fp.Addr())
	}
	nodeOf := map[string]int{}
	for i, a := range fpAddrs {
		nodeOf[a] = i
	}
	idx := func(name string) int {
		for i, p := range pols {
			if p.name == name {
				return i
			}
		}
		t.Fatalf("no policy %q", name)
		return -1
	}
	iOld, iNew, iLC := idx(policies[polOld].name), idx(policies[polNew].name), idx(policies[polLeastConn].name)

	example, err := os.ReadFile(filepath.Join(caddyproc.RepoRootT(t), "examples", "Caddyfile"))
	require.NoError(t, err)
	var targets []*target
	for _, p := range pols {
		ports, err := freeport.Ports(2)
		require.NoError(t, err)
		env := []string{
			"LISTEN_HOST=127.0.0.1",
			fmt.Sprintf("S3_PORT=%d", ports[0]),
			fmt.Sprintf("CONSOLE_PORT=%d", ports[1]),
			"MINIO_S3=" + strings.Join(fpAddrs, " "), // the nodes, each behind its link
			"MINIO_CONSOLE=" + strings.Join(nodes, " "),
			"AFFINITY_SALT=spread-salt",
		}
		cp := caddyproc.StartT(t, caddyproc.Options{Caddyfile: withPolicy(t, string(example), p), Env: env})
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		op, err := loadbench.HeavyOp(ctx, loadbench.NewHeavyClient(), addr, user, pass)
		require.NoError(t, err)
		require.NoError(t, loadbench.WaitServing(ctx, "http://"+addr+"/minio/health/ready", 20*time.Second))
		targets = append(targets, &target{pol: p, caddy: cp, addr: addr, op: op, seen: map[string]int{}})
	}

	load0 := loadAvg()
	cells := map[[2]int]*cell{}
	for rep := 0; rep < repeat; rep++ {
		for ci, bw := range caps {
			for _, fp := range fps {
				fp.SetBandwidth(bw)
			}
			for k := range targets {
				ti := (k + rep) % len(targets) // rotate the order per repetition
				tg := targets[ti]
				before := make([]faultproxy.Stats, len(fps))
				for i, fp := range fps {
					before[i] = fp.Stats()
				}
				res := loadbench.RunClosed(ctx, loadbench.LoadSpec{Concurrency: loadbench.HeavyConns, Duration: dur, MaxRequests: 1 << 20}, tg.op, tg.caddy.Pid())
				bytes := make([]int64, len(fps))
				for i, fp := range fps {
					st := fp.Stats()
					bytes[i] = st.BytesFromTarget - before[i].BytesFromTarget + st.BytesToTarget - before[i].BytesToTarget
				}
				reqs := tg.requestsSinceLast(t, nodeOf, res.Requests)
				cl := cells[[2]int{ti, ci}]
				if cl == nil {
					cl = &cell{}
					cells[[2]int{ti, ci}] = cl
				}
				cl.runs = append(cl.runs, res)
				cl.requests = append(cl.requests, reqs)
				cl.bytes = append(cl.bytes, bytes)
				t.Logf("%s rep %d %3d MiB/s %-42s %6.1f MiB/s  requests per node %v  errors %d/%d %s",
					backend, rep+1, bw>>20, tg.pol.name, float64(res.Bytes)/res.Elapsed.Seconds()/(1<<20), reqs, res.Errors, res.Requests, res.ErrSample)
			}
		}
	}
	for _, fp := range fps {
		fp.SetBandwidth(0)
	}

	// The table.
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "cap per node\tpolicy\tMiB/s (median)\tvs least_conn\trequests per node (access log)\tbytes per node (link)\tp50\tp99\terrors\n")
	for ci, bw := range caps {
		lc := cells[[2]int{iLC, ci}].medianMiBps()
		for ti, tg := range targets {
			cl := cells[[2]int{ti, ci}]
			m := loadbench.MedianResult(cl.runs)
			errs, total := cl.errors()
			fmt.Fprintf(w, "%d MiB/s\t%s\t%.1f\t%.2fx\t%s\t%s\t%s\t%s\t%d/%d\n", bw>>20, tg.pol.name, cl.medianMiBps(), cl.medianMiBps()/lc,
				cl.shares(), cl.byteShares(), m.P50.Round(time.Millisecond), m.P99.Round(time.Millisecond), errs, total)
		}
	}
	w.Flush()
	t.Logf("heavy client, %s: %d connections, one User-Agent, GET:PUT 3:1 of %d MiB objects, %s x %d per cell (interleaved, medians), 4 nodes each behind a faultproxy link capped each way; load average before %s, after %s:\n%s",
		backend, loadbench.HeavyConns, loadbench.HeavyObjectSize>>20, dur, repeat, load0, loadAvg(), b.String())

	// What a user checks.
	bound := 0
	for ci, bw := range caps {
		old, nw, lc := cells[[2]int{iOld, ci}], cells[[2]int{iNew, ci}], cells[[2]int{iLC, ci}]
		assert.GreaterOrEqual(t, old.shares().MaxOverMean, 3.9, "%d MiB/s: the old chain puts the heavy client on one node: %s", bw>>20, old.shares())
		assert.LessOrEqual(t, nw.shares().MaxOverMean, 1.5, "%d MiB/s: new default: no node above 1.5x the mean share: %s", bw>>20, nw.shares())
		for ti, tg := range targets {
			errs, _ := cells[[2]int{ti, ci}].errors()
			assert.Zero(t, errs, "%d MiB/s %s: failed requests", bw>>20, tg.pol.name)
		}
		if old.medianMiBps() > 0.6*lc.medianMiBps() {
			t.Logf("%d MiB/s per node: not link-bound (old chain %.1f vs least_conn %.1f MiB/s: the machine limits, not the links); throughput ratio %.2fx reported, not asserted",
				bw>>20, old.medianMiBps(), lc.medianMiBps(), nw.medianMiBps()/lc.medianMiBps())
			continue
		}
		bound++
		// Throughput against least_conn is reported, not asserted: it is a
		// speed goal (docs/benchmarks.md has the table), and with a core
		// burned the machine decides it as much as the spread does (run 5
		// of stop 19: 0.86x, with every node's share within 1.14x the mean).
		t.Logf("%d MiB/s per node, link-bound: new default %.1f MiB/s vs least_conn %.1f MiB/s (%.2fx)",
			bw>>20, nw.medianMiBps(), lc.medianMiBps(), nw.medianMiBps()/lc.medianMiBps())
	}
	assert.Positive(t, bound, "%s: no cap was link-bound; the heavy client measured the machine, not the spread", backend)
	if mustBind {
		old, lc := cells[[2]int{iOld, 0}], cells[[2]int{iLC, 0}]
		assert.LessOrEqual(t, old.medianMiBps(), 0.6*lc.medianMiBps(), "%s at %d MiB/s per node must be link-bound", backend, caps[0]>>20)
	}
}

// requestsSinceLast counts the heavy client's requests per node in the
// access log since the previous call (Caddy logs each request after its
// response: wait, bounded, until the count reaches want).
func (tg *target) requestsSinceLast(t *testing.T, nodeOf map[string]int, want int) []int64 {
	t.Helper()
	var counts map[string]int
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, err := tg.caddy.AccessLog()
		require.NoError(t, err)
		counts = map[string]int{}
		for _, e := range es {
			if strings.HasPrefix(e.Request.URI, "/"+loadbench.HeavyBucket+"/") {
				// Where the policy sent the request: its first attempt.
				// A hedged read may be answered by its twin on another
				// node (seen: the old chain's one node at 3.68x the mean
				// instead of 4x by answers), which is not the policy's
				// placement.
				node := e.String("first_node")
				if node == "" {
					node = e.String("upstream")
				}
				counts[node]++
			}
		}
		got := 0
		for k, n := range counts {
			got += n - tg.seen[k]
		}
		if got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := make([]int64, len(nodeOf))
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if i, ok := nodeOf[k]; ok {
			out[i] += int64(counts[k] - tg.seen[k])
		}
	}
	tg.seen = counts
	return out
}

// loadAvg is the machine's 1/5/15-minute load average (other work on the
// machine shows in the numbers; the report says how much there was).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
