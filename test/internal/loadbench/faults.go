package loadbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/minio-lb/caddy-minio-lb/test/internal/faultproxy"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// The fault cells: the 4-node MinIO cluster with one node slow or frozen,
// through every proxy configured with a per-try timeout as its own
// documentation advises. Every node sits behind an HTTP fault proxy
// (faultproxy.HTTPProxy), for every target alike: the proxy in front of
// node 2 injects the latency or holds every request, and all four count the
// requests each target sent, so extra requests (retries, hedges) are
// counted the same way for every target.
const (
	WFaultHealthy = "healthy (control)"
	WSlowNode     = "slow node"
	WFrozenLink   = "frozen link"
	WFrozenNode   = "frozen node"
)

// FaultCells are the fault cells in report order.
var FaultCells = []string{WFaultHealthy, WSlowNode, WFrozenLink, WFrozenNode}

// Our Caddy with another hedge setting than examples/Caddyfile's adaptive:
// targets of the fault cells only.
const (
	KindOursHedge50  Kind = "ours-hedge-50ms"
	KindOursHedgeOff Kind = "ours-hedge-off"
)

// FaultKinds are the targets of the fault cells, in report order.
var FaultKinds = []Kind{KindOurs, KindOursHedge50, KindOursHedgeOff, KindCaddy, KindNginx, KindHAProxy}

// program is the executable a target runs.
func program(k Kind) Kind {
	switch k {
	case KindOursHedge50, KindOursHedgeOff:
		return KindOurs
	}
	return k
}

// FaultSpec shapes the fault cells.
type FaultSpec struct {
	Rate     int           // open-loop requests per second
	Cell     time.Duration // length of a cell
	FaultAt  time.Duration // the fault starts this long into the cell (slow node: at 0)
	FaultFor time.Duration // and lasts this long
	Delay    time.Duration // slow node: added before every answer of node 2
	Repeat   int           // repetitions, each in a rotated target order
	// TryTimeout is every target's per-try timeout (ours: try_timeout;
	// stock Caddy: response_header_timeout; nginx: proxy_read_timeout;
	// HAProxy: timeout server), examples/Caddyfile's value.
	TryTimeout time.Duration
}

// DefaultFaults is the fault cells' default shape.
var DefaultFaults = FaultSpec{Rate: 40, Cell: 16 * time.Second, FaultAt: 3 * time.Second, FaultFor: 8 * time.Second,
	Delay: 200 * time.Millisecond, Repeat: 2, TryTimeout: 5 * time.Second}

// Fault workload: GET:HEAD:PUT 2:1:1 of FaultObjects objects of
// FaultObjectSize, half the requests with a signed sessionid (one of
// faultSessions per object), half plain.
const (
	FaultBucket     = "faults"
	FaultObjects    = 48
	FaultObjectSize = 64 << 10
	faultSessions   = 3
	slowNodeIndex   = 1 // node 2: slow, or its link frozen
	frozenNodeIndex = 2 // node 3: SIGSTOP
)

// FaultResult is one cell through one target, one repetition.
type FaultResult struct {
	Cell string
	Kind Kind
	// In the fault window (the whole cell for healthy and slow): requests
	// started, failed reads and PUTs, latencies of the reads (failed ones
	// included: a client waited that long too) and of the PUTs.
	Requests, Reads, Puts    int
	ReadFailed, PutFailed    int
	ReadP50, ReadP99, ReadMx time.Duration
	PutP99                   time.Duration
	// Over the whole cell: requests, failures, and the S3 requests the
	// target sent to the nodes (retries and hedges included), and to the
	// faulty node.
	CellRequests, CellFailed int
	NodeRequests, FaultyReqs int64
	ErrSample                string
	Err                      string // the cell did not run
}

// Extra is the target's extra requests to the nodes per client request
// over the whole cell (retries, hedges).
func (r FaultResult) Extra() float64 {
	if r.CellRequests == 0 {
		return 0
	}
	return float64(r.NodeRequests)/float64(r.CellRequests) - 1
}

// faultTarget is one proxy of the fault cells and the objects' URLs
// presigned for it.
type faultTarget struct {
	kind  Kind
	proxy *Proxy
	addr  string
	plain []faultURLs
	sess  [][faultSessions]faultURLs
}

type faultURLs struct{ get, head, put string }

// FaultSite is the one site of a fault target: listen, with the 4 fault
// proxies as upstreams.
func faultSite(listen string, ups []string) []Site { return []Site{{Listen: listen, Upstreams: ups}} }

// faultConfig is the config of a fault target.
func faultConfig(kind Kind, dir string, sites []Site, spec FaultSpec) (string, error) {
	switch kind {
	case KindOurs:
		return OursFaultCaddyfile(sites, "adaptive", spec.TryTimeout), nil
	case KindOursHedge50:
		return OursFaultCaddyfile(sites, "50ms", spec.TryTimeout), nil
	case KindOursHedgeOff:
		return OursFaultCaddyfile(sites, "off", spec.TryTimeout), nil
	case KindCaddy:
		return StockFaultCaddyfile(sites, spec.TryTimeout), nil
	case KindNginx:
		return NginxFaultConf(dir, sites, spec.TryTimeout), nil
	case KindHAProxy:
		return HAProxyFaultConf(sites, spec.TryTimeout), nil
	}
	return "", fmt.Errorf("no fault config for target %q", kind)
}

// PrepareFaults creates the bucket and the objects of the fault cells
// straight on a node.
func PrepareFaults(ctx context.Context, endpoint, user, pass string) error {
	c, err := S3Client(endpoint, user, pass, "", nil)
	if err != nil {
		return err
	}
	if err := miniocluster.RetrySlowDown(ctx, func() error { return c.MakeBucket(ctx, FaultBucket, minio.MakeBucketOptions{}) }); err != nil {
		if exists, e2 := c.BucketExists(ctx, FaultBucket); e2 != nil || !exists {
			return fmt.Errorf("creating bucket %s: %w", FaultBucket, err)
		}
	}
	for i := range FaultObjects {
		body := faultBody(i)
		if err := miniocluster.RetrySlowDown(ctx, func() error {
			_, err := c.PutObject(ctx, FaultBucket, faultObject(i), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{DisableMultipart: true})
			return err
		}); err != nil {
			return fmt.Errorf("uploading %s: %w", faultObject(i), err)
		}
	}
	return nil
}

func faultObject(i int) string { return fmt.Sprintf("obj-%02d", i) }

// faultBody is object i's one body: every PUT writes it again, so every
// GET must return it.
func faultBody(i int) []byte {
	off := (i * 4099) % (len(payload) - FaultObjectSize)
	return payload[off : off+FaultObjectSize]
}

// presignFault presigns every object's URLs for a target at addr.
func presignFault(ctx context.Context, t *faultTarget, user, pass string) error {
	c, err := S3Client(t.addr, user, pass, "", nil)
	if err != nil {
		return err
	}
	sign := func(method string, i int, session string) (string, error) {
		q := url.Values{}
		if session != "" {
			q.Set("sessionid", session)
		}
		u, err := c.Presign(ctx, method, FaultBucket, faultObject(i), 6*time.Hour, q)
		if err != nil {
			return "", err
		}
		return u.String(), nil
	}
	set := func(i int, session string) (faultURLs, error) {
		var u faultURLs
		var errs [3]error
		u.get, errs[0] = sign(http.MethodGet, i, session)
		u.head, errs[1] = sign(http.MethodHead, i, session)
		u.put, errs[2] = sign(http.MethodPut, i, session)
		return u, errors.Join(errs[:]...)
	}
	t.plain = make([]faultURLs, FaultObjects)
	t.sess = make([][faultSessions]faultURLs, FaultObjects)
	for i := range FaultObjects {
		if t.plain[i], err = set(i, ""); err != nil {
			return err
		}
		for v := range faultSessions {
			if t.sess[i][v], err = set(i, fmt.Sprintf("sess-%02d-%d", i, v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// faultLoadClient never retries: no keep-alive (Go's transport resends a
// request whose reused connection was closed under it), no redirects.
func faultLoadClient() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// faultReq is one request of a fault cell.
type faultReq struct {
	kind   string
	start  time.Time
	dur    time.Duration
	failed bool
	why    string
}

var faultKinds = []string{http.MethodGet, http.MethodHead, http.MethodGet, http.MethodPut}

// doFault sends request seq of the mix through t and checks the answer as
// a client would.
func doFault(hc *http.Client, t *faultTarget, seq int) faultReq {
	kind := faultKinds[seq%len(faultKinds)]
	obj := (seq*7 + seq/FaultObjects) % FaultObjects
	u := t.plain[obj]
	if seq%2 == 1 {
		u = t.sess[obj][(seq/2)%faultSessions]
	}
	r := faultReq{kind: kind, start: time.Now()}
	body := faultBody(obj)
	var rd io.Reader
	target := map[string]string{http.MethodGet: u.get, http.MethodHead: u.head, http.MethodPut: u.put}[kind]
	if kind == http.MethodPut {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(kind, target, rd)
	if err != nil {
		r.failed, r.why = true, err.Error()
		return r
	}
	resp, err := hc.Do(req)
	if err != nil {
		r.dur, r.failed, r.why = time.Since(r.start), true, err.Error()
		return r
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r.dur = time.Since(r.start)
	switch {
	case err != nil:
		r.failed, r.why = true, "reading the body: "+err.Error()
	case resp.StatusCode != http.StatusOK:
		r.failed, r.why = true, fmt.Sprintf("%s: %s %.120s", kind, resp.Status, strings.ReplaceAll(string(b), "\n", " "))
	case kind == http.MethodGet && !bytes.Equal(b, body):
		r.failed, r.why = true, fmt.Sprintf("GET: %d bytes that are not the object's", len(b))
	case kind == http.MethodHead && resp.ContentLength != int64(len(body)):
		r.failed, r.why = true, fmt.Sprintf("HEAD: Content-Length %d, want %d", resp.ContentLength, len(body))
	}
	return r
}

// runFaultLoad sends spec.Rate requests per second through t for
// spec.Cell (open loop: a slow answer does not delay the next request),
// calling at(d) once d into the cell for each scheduled event, and returns
// every request once all have ended.
func runFaultLoad(ctx context.Context, t *faultTarget, spec FaultSpec, events []faultEvent) []faultReq {
	hc := faultLoadClient()
	defer hc.CloseIdleConnections()
	var mu sync.Mutex
	var out []faultReq
	var wg sync.WaitGroup
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(spec.Rate))
	defer tick.Stop()
	next := 0
	for seq := 0; time.Since(start) < spec.Cell && ctx.Err() == nil; seq++ {
		for next < len(events) && time.Since(start) >= events[next].at {
			events[next].do()
			next++
		}
		wg.Add(1)
		go func(seq int) {
			defer wg.Done()
			r := doFault(hc, t, seq)
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}(seq)
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	for ; next < len(events); next++ {
		events[next].do()
	}
	wg.Wait()
	return out
}

type faultEvent struct {
	at time.Duration
	do func()
}

// faultRig is the cluster with a fault proxy in front of every node.
type faultRig struct {
	cluster *miniocluster.Cluster
	fps     []*faultproxy.HTTPProxy
	spec    FaultSpec
}

func (g *faultRig) nodeRequests() []int64 {
	out := make([]int64, len(g.fps))
	for i, fp := range g.fps {
		out[i] = fp.S3Requests()
	}
	return out
}

// ensureRouting sends requests with sessionids through t until every node
// got one from it (a node a previous cell took out of t's rotation is back),
// at most timeout.
func (g *faultRig) ensureRouting(ctx context.Context, t *faultTarget, timeout time.Duration) error {
	hc := faultLoadClient()
	defer hc.CloseIdleConnections()
	before := g.nodeRequests()
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		u := t.sess[i%FaultObjects][(i/FaultObjects)%faultSessions]
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, u.head, nil)
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
		}
		now := g.nodeRequests()
		missing := []string{}
		for n := range now {
			if now[n] == before[n] {
				missing = append(missing, fmt.Sprintf("node %d", n+1))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s got no request from %s within %s", strings.Join(missing, ", "), t.kind, timeout)
		}
		time.Sleep(50 * time.Millisecond) // pacing the warm-up requests
	}
}

// runCell runs one fault cell through t.
func (g *faultRig) runCell(ctx context.Context, cell string, t *faultTarget) FaultResult {
	res := FaultResult{Cell: cell, Kind: t.kind}
	spec := g.spec
	slow, frozenNode := g.fps[slowNodeIndex], g.cluster.Node(frozenNodeIndex)
	from, to := time.Duration(0), spec.Cell
	faulty := slowNodeIndex
	var events []faultEvent
	switch cell {
	case WSlowNode:
		slow.SetDelay(spec.Delay)
		defer slow.SetDelay(0)
	case WFrozenLink:
		from, to = spec.FaultAt, spec.FaultAt+spec.FaultFor
		events = []faultEvent{{from, func() { slow.SetFrozen(true) }}, {to, func() { slow.SetFrozen(false) }}}
		defer slow.SetFrozen(false)
	case WFrozenNode:
		faulty = frozenNodeIndex
		from, to = spec.FaultAt, spec.FaultAt+spec.FaultFor
		events = []faultEvent{{from, func() { _ = frozenNode.Stop() }}, {to, func() { _ = frozenNode.Cont() }}}
		defer func() { _ = frozenNode.Cont() }()
	}
	before := g.nodeRequests()
	began := time.Now()
	rs := runFaultLoad(ctx, t, spec, events)
	after := g.nodeRequests()
	for i := range after {
		res.NodeRequests += after[i] - before[i]
	}
	res.FaultyReqs = after[faulty] - before[faulty]
	var reads, puts []time.Duration
	for _, r := range rs {
		res.CellRequests++
		if r.failed {
			res.CellFailed++
			if res.ErrSample == "" {
				res.ErrSample = r.why
			}
		}
		if d := r.start.Sub(began); d < from || d >= to {
			continue
		}
		res.Requests++
		if r.kind == http.MethodPut {
			res.Puts++
			puts = append(puts, r.dur)
			if r.failed {
				res.PutFailed++
			}
			continue
		}
		res.Reads++
		reads = append(reads, r.dur)
		if r.failed {
			res.ReadFailed++
		}
	}
	res.ReadP50, res.ReadP99, res.ReadMx = Percentile(reads, 50), Percentile(reads, 99), Percentile(reads, 100)
	res.PutP99 = Percentile(puts, 99)
	if cell == WFrozenNode {
		// MinIO's own recovery is not the next cell's business.
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_ = frozenNode.WaitReady(wctx)
		cancel()
	}
	return res
}

// RunFaults runs the fault cells: spec.Repeat repetitions of every cell
// through every target of kinds that can run, in a rotated order.
func RunFaults(ctx context.Context, opt Options, cluster *miniocluster.Cluster, dir string, logf func(string, ...any)) ([]FaultResult, []string) {
	spec := opt.Faults
	var notes []string
	user, pass := cluster.Credentials()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := PrepareFaults(pctx, cluster.S3Addrs()[0], user, pass)
	cancel()
	if err != nil {
		return nil, []string{"fault cells not run: " + err.Error()}
	}
	rig := &faultRig{cluster: cluster, spec: spec}
	var ups []string
	for _, a := range cluster.S3Addrs() {
		fp, err := faultproxy.StartHTTP(a)
		if err != nil {
			return nil, []string{"fault cells not run: " + err.Error()}
		}
		defer fp.Close()
		rig.fps = append(rig.fps, fp)
		ups = append(ups, fp.Addr())
	}
	var targets []*faultTarget
	defer func() {
		for _, t := range targets {
			t.proxy.Stop()
		}
	}()
	for _, k := range opt.FaultKinds {
		if program(k) == KindOurs || k == KindCaddy {
			if opt.CaddyBin == "" {
				notes = append(notes, fmt.Sprintf("fault cells: %s not run: CADDY_BIN is not set", k))
				continue
			}
		}
		listen, err := FreeAddr()
		if err != nil {
			return nil, append(notes, err.Error())
		}
		sites := faultSite(listen, ups)
		p, err := startProxyWith(ctx, k, opt.CaddyBin, dir, sites, func(d string) (string, error) { return faultConfig(k, d, sites, spec) })
		if err != nil {
			notes = append(notes, fmt.Sprintf("fault cells: %s not run: %v", k, err))
			continue
		}
		t := &faultTarget{kind: k, proxy: p, addr: listen}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = presignFault(pctx, t, user, pass)
		cancel()
		if err == nil {
			err = WaitServing(ctx, "http://"+listen+HealthPath, 20*time.Second)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("fault cells: %s not run: %v", k, err))
			p.Stop()
			continue
		}
		targets = append(targets, t)
		logf("fault cells: %s is up (pid %d)", k, p.Pid())
	}
	var results []FaultResult
	for r := 0; r < spec.Repeat; r++ {
		for _, cell := range FaultCells {
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				if ctx.Err() != nil {
					return results, notes
				}
				if err := rig.ensureRouting(ctx, t, 45*time.Second); err != nil {
					notes = append(notes, fmt.Sprintf("%s, %s, repetition %d: %v (run anyway)", cell, t.kind, r+1, err))
				}
				res := rig.runCell(ctx, cell, t)
				results = append(results, res)
				logf("fault rep %d/%d %-18s %-16s reads p50 %-9s p99 %-9s max %-9s failed %d/%d (cell %d/%d) extra %.1f%%", r+1, spec.Repeat, cell, t.kind,
					fmtDur(res.ReadP50), fmtDur(res.ReadP99), fmtDur(res.ReadMx), res.ReadFailed+res.PutFailed, res.Requests, res.CellFailed, res.CellRequests, 100*res.Extra())
				if !t.proxy.Alive() {
					notes = append(notes, fmt.Sprintf("%s exited during %s: %s", t.kind, cell, tail(t.proxy.Output(), 500)))
				}
			}
		}
	}
	return results, notes
}

// FaultSummary folds one cell's repetitions through one target.
type FaultSummary struct {
	Cell                  string
	Kind                  Kind
	Runs                  int
	Requests, Reads, Puts int
	ReadFailed, PutFailed int
	ReadP50, ReadP99      time.Duration // medians over the repetitions
	ReadMax               time.Duration // the longest of all
	PutP99                time.Duration
	CellRequests          int
	CellFailed            int
	NodeRequests          int64
	FaultyReqs            int64
	ErrSample             string
}

// Extra is the extra requests to the nodes per client request.
func (s FaultSummary) Extra() float64 {
	if s.CellRequests == 0 {
		return 0
	}
	return float64(s.NodeRequests)/float64(s.CellRequests) - 1
}

// FaultSummary folds the repetitions of cell through k; false if none ran.
func (r *Report) FaultSummary(cell string, k Kind) (FaultSummary, bool) {
	s := FaultSummary{Cell: cell, Kind: k}
	var p50, p99, put []float64
	for _, f := range r.Faults {
		if f.Cell != cell || f.Kind != k {
			continue
		}
		s.Runs++
		s.Requests += f.Requests
		s.Reads += f.Reads
		s.Puts += f.Puts
		s.ReadFailed += f.ReadFailed
		s.PutFailed += f.PutFailed
		s.CellRequests += f.CellRequests
		s.CellFailed += f.CellFailed
		s.NodeRequests += f.NodeRequests
		s.FaultyReqs += f.FaultyReqs
		s.ReadMax = max(s.ReadMax, f.ReadMx)
		p50 = append(p50, float64(f.ReadP50))
		p99 = append(p99, float64(f.ReadP99))
		put = append(put, float64(f.PutP99))
		if s.ErrSample == "" {
			s.ErrSample = f.ErrSample
		}
	}
	s.ReadP50, s.ReadP99, s.PutP99 = time.Duration(Median(p50)), time.Duration(Median(p99)), time.Duration(Median(put))
	return s, s.Runs > 0
}

// faultRows writes the fault cells' table; false when none ran.
func (r *Report) faultRows(b *strings.Builder) bool {
	if len(r.Faults) == 0 {
		return false
	}
	f := r.Opts.Faults
	fmt.Fprintf(b, "## Slow and frozen nodes\n\n"+
		"4-node MinIO, every node behind an HTTP fault proxy (the same for every target; it counts the requests each target sends to each node). "+
		"Open loop: %d requests/s for %s per cell, GET:HEAD:PUT 2:1:1 of %d objects of %d KiB, presigned, half with a signed sessionid, from a client that never retries (no keep-alive). "+
		"Every target has a per-try timeout of %s as its documentation advises (ours: try_timeout; stock Caddy: response_header_timeout; nginx: proxy_read_timeout with proxy_next_upstream timeout; "+
		"HAProxy: timeout server with retry-on response-timeout and redispatch) and 6 retries of reads. "+
		"Cells: %s: nothing injected; %s: node 2 answers %s later, the whole cell; %s: node 2's fault proxy holds every request (probes too) from %s to %s while the node keeps serving its peers; "+
		"%s: node 3 SIGSTOPped from %s to %s (MinIO's other nodes wait for its drive too). "+
		"Latencies and failures are of the requests started in the fault window (the whole cell for healthy and slow), medians of p50/p99 over %d repetitions, the longest of all; "+
		"whole cell: failures over every request of the cell; extra: requests the target sent to the nodes per client request, minus 1 (retries, hedges); faulty node: its share of those requests.\n\n",
		f.Rate, f.Cell, FaultObjects, FaultObjectSize>>10, f.TryTimeout,
		WFaultHealthy, WSlowNode, f.Delay, WFrozenLink, f.FaultAt, f.FaultAt+f.FaultFor, WFrozenNode, f.FaultAt, f.FaultAt+f.FaultFor, f.Repeat)
	b.WriteString("| cell | target | reads p50 | reads p99 | reads max | PUT p99 | failed reads | failed PUT | whole cell failed | extra | faulty node | first error |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, cell := range FaultCells {
		for _, k := range r.Opts.FaultKinds {
			s, ok := r.FaultSummary(cell, k)
			if !ok {
				continue
			}
			share := "-"
			if s.NodeRequests > 0 {
				share = fmt.Sprintf("%.1f%%", 100*float64(s.FaultyReqs)/float64(s.NodeRequests))
			}
			errs := "-"
			if s.ErrSample != "" {
				errs = oneLine(truncate(s.ErrSample, 70))
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %d/%d | %d/%d | %d/%d | %.1f%% | %s | %s |\n", cell, k,
				fmtDur(s.ReadP50), fmtDur(s.ReadP99), fmtDur(s.ReadMax), fmtDur(s.PutP99),
				s.ReadFailed, s.Reads, s.PutFailed, s.Puts, s.CellFailed, s.CellRequests, 100*s.Extra(), share, errs)
		}
	}
	b.WriteString("\n")
	return true
}
