package loadbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/faultproxy"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// Options of one harness run. The zero value of a field means its default.
type Options struct {
	CaddyBin    string        // our Caddy build (./xcaddy.sh build)
	Duration    time.Duration // per cell and repetition; default 3s
	Repeat      int           // repetitions, interleaved; medians reported; default 3
	MaxRequests int           // per cell and repetition; default 500000
	Conc1K      int           // workers of the 1 KiB GET; default 64
	ConcBig     int           // workers of the 1 MiB GET/PUT; default 8
	ConcMP      int           // workers of the multipart upload; default 4
	HashKeys    int           // keys of the hash quality check; default 20000
	NoMinIO     bool          // skip the MinIO workloads
	NoHeavy     bool          // skip the heavy-client cell
	HeavyBW     int64         // per-node bandwidth cap of the heavy-client cell, bytes/s; default 100 MiB/s
	NoFailover  bool          // skip the failover timelines
	Failover    FailoverSpec  // default DefaultFailover
	Kinds       []Kind        // targets; default all
	NoFaults    bool          // skip the slow/frozen node cells
	FaultsOnly  bool          // run only the slow/frozen node cells
	Faults      FaultSpec     // default DefaultFaults
	FaultKinds  []Kind        // targets of the fault cells; default FaultKinds
	Command     string        // how the run was started, for the report
	Log         io.Writer     // progress; default os.Stderr
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Repeat <= 0 {
		o.Repeat = 3
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 500000
	}
	if o.Conc1K <= 0 {
		o.Conc1K = 64
	}
	if o.ConcBig <= 0 {
		o.ConcBig = 8
	}
	if o.ConcMP <= 0 {
		o.ConcMP = 4
	}
	if o.HeavyBW <= 0 {
		o.HeavyBW = 100 << 20
	}
	if o.HashKeys <= 0 {
		o.HashKeys = 20000
	}
	if o.Failover.Rate == 0 {
		o.Failover = DefaultFailover
	}
	if len(o.Kinds) == 0 {
		o.Kinds = []Kind{KindOurs, KindCaddy, KindNginx, KindHAProxy, KindDirect}
	}
	if o.Faults.Rate <= 0 {
		o.Faults = DefaultFaults
	}
	if len(o.FaultKinds) == 0 {
		o.FaultKinds = FaultKinds
	}
	if o.FaultsOnly {
		o.NoHeavy, o.NoFailover, o.NoFaults = true, true, false
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
}

// Workload names, in report order.
const (
	WFastGet1K = "fast GET 1 KiB"
	WFastGet1M = "fast GET 1 MiB"
	WFastPut1M = "fast PUT 1 MiB"
	WS3Get1M   = "MinIO GET 1 MiB"
	WS3Put1M   = "MinIO PUT 1 MiB"
	WS3MP      = "MinIO multipart 6 MiB"
	WHeavy     = "heavy client, capped links"
)

// Cell is one workload through one target, every repetition.
type Cell struct {
	Workload string
	Kind     Kind
	Conc     int
	Runs     []Result
	// NodeBytes, heavy-client cell only: per run, the bytes each MinIO
	// node's capped link carried (both directions), in node order.
	NodeBytes [][]int64
}

// NodeShares sums NodeBytes over the runs into shares per node.
func (c *Cell) NodeShares() Shares {
	if len(c.NodeBytes) == 0 {
		return Shares{}
	}
	sum := make([]int64, len(c.NodeBytes[0]))
	for _, per := range c.NodeBytes {
		for i, n := range per {
			sum[i] += n
		}
	}
	return NodeShares(sum)
}

// HashRow is one policy's hash quality.
type HashRow struct {
	Policy string
	Q      HashQuality
	Err    string
}

// Report is everything one run measured.
type Report struct {
	Opts     Options
	Machine  []string
	Started  time.Time
	Took     time.Duration
	Skipped  map[Kind]string
	Cells    []*Cell
	Hash     []HashRow
	Peak     map[Kind]ProcUsage
	Failover []FailoverResult
	Faults   []FaultResult
	Notes    []string
}

// Cell returns the cell of workload w and kind k, nil if not run.
func (r *Report) Cell(w string, k Kind) *Cell {
	for _, c := range r.Cells {
		if c.Workload == w && c.Kind == k {
			return c
		}
	}
	return nil
}

func machineInfo() []string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	ver := func(bin string, args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			return "unavailable"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return []string{
		fmt.Sprintf("nproc: %d (GOMAXPROCS %d)", runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		"CPU: " + model,
		"kernel: " + kernel,
		"go: " + runtime.Version(),
		"nginx: " + ver(NginxBin, "-v"),
		"haproxy: " + ver(HAProxyBin, "-v"),
	}
}

type target struct {
	kind   Kind
	proxy  *Proxy
	fast   string // base URL of the fast site
	s3     string // host:port of the S3 site
	heavy  string // host:port of the S3 site whose nodes are behind capped links
	client *http.Client
}

// Run runs the whole comparison. Targets that cannot run are reported in
// Report.Skipped, not as an error; an error means nothing useful ran.
func Run(ctx context.Context, opt Options) (*Report, error) {
	opt.defaults()
	logf := func(f string, a ...any) { fmt.Fprintf(opt.Log, "loadbench: "+f+"\n", a...) }
	rep := &Report{Opts: opt, Started: time.Now(), Skipped: map[Kind]string{}, Peak: map[Kind]ProcUsage{}, Machine: machineInfo()}
	defer func() { rep.Took = time.Since(rep.Started) }()

	if !opt.FaultsOnly {
		logf("hash quality (%d keys, 6 nodes)", opt.HashKeys)
		rep.Hash = hashQuality(opt.HashKeys)
	}

	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	var fastUps []string
	var backends []*Backend
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		b, err := StartBackend(i, "127.0.0.1:0")
		if err != nil {
			return rep, err
		}
		backends = append(backends, b)
		fastUps = append(fastUps, b.Addr)
	}

	var cluster *miniocluster.Cluster
	var s3User, s3Pass string
	if !opt.NoMinIO {
		logf("starting a 4-node MinIO cluster")
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		cluster, err = miniocluster.Start(cctx, miniocluster.Options{Nodes: 4})
		cancel()
		if err != nil {
			rep.Notes = append(rep.Notes, "MinIO workloads skipped: "+err.Error())
			cluster = nil
		} else {
			defer cluster.Stop()
			s3User, s3Pass = cluster.Credentials()
			pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err = PrepareS3(pctx, cluster.S3Addrs()[0], s3User, s3Pass)
			cancel()
			if err != nil {
				rep.Notes = append(rep.Notes, "MinIO workloads skipped: "+err.Error())
				cluster = nil
			}
		}
	}

	// The heavy-client cell: each fast backend behind a faultproxy capped
	// at HeavyBW each way (a node's NIC; fast backends, so that the links,
	// not MinIO's CPU on this machine, are what binds); every target gets
	// a site whose upstreams are those links.
	var links []*faultproxy.Proxy
	var linkAddrs []string
	defer func() {
		for _, l := range links {
			_ = l.Close()
		}
	}()
	if !opt.NoHeavy {
		for _, a := range fastUps {
			l, err := faultproxy.Start(a)
			if err != nil {
				rep.Notes = append(rep.Notes, "heavy-client cell skipped: "+err.Error())
				linkAddrs = nil
				break
			}
			l.SetBandwidth(opt.HeavyBW)
			links = append(links, l)
			linkAddrs = append(linkAddrs, l.Addr())
		}
	}

	// Start every target once; cells are interleaved across them.
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.proxy != nil {
				t.proxy.Stop()
			}
		}
	}()
	kinds := opt.Kinds
	if opt.FaultsOnly {
		kinds = nil
	}
	for _, k := range kinds {
		t := &target{kind: k, client: NewClient(opt.Conc1K)}
		if k == KindDirect {
			t.fast = "http://" + fastUps[0]
			if cluster != nil {
				t.s3 = cluster.S3Addrs()[0]
			}
			if len(linkAddrs) > 0 {
				t.heavy = linkAddrs[0] // one node, through its capped link
			}
			targets = append(targets, t)
			continue
		}
		if k == KindOurs || k == KindCaddy {
			if opt.CaddyBin == "" {
				rep.Skipped[k] = "CADDY_BIN is not set (run ./xcaddy.sh build)"
				continue
			}
			if k == KindOurs {
				if err := CaddyHasOurModules(opt.CaddyBin); err != nil {
					rep.Skipped[k] = err.Error()
					continue
				}
			}
		}
		fastL, _ := FreeAddr()
		sites := []Site{{Listen: fastL, Upstreams: fastUps}}
		if cluster != nil {
			s3L, _ := FreeAddr()
			sites = append(sites, Site{Listen: s3L, Upstreams: cluster.S3Addrs()})
		}
		heavySite := -1
		if len(linkAddrs) > 0 {
			hL, _ := FreeAddr()
			heavySite = len(sites)
			sites = append(sites, Site{Listen: hL, Upstreams: linkAddrs})
		}
		p, err := StartProxy(ctx, k, opt.CaddyBin, dir, sites)
		if err != nil {
			rep.Skipped[k] = err.Error()
			continue
		}
		t.proxy = p
		t.fast = "http://" + fastL
		if err := WaitServing(ctx, t.fast+"/obj/1?"+sessionQuery(1), 15*time.Second); err != nil {
			rep.Skipped[k] = err.Error()
			p.Stop()
			continue
		}
		if cluster != nil {
			t.s3 = sites[1].Listen
			if err := WaitServing(ctx, "http://"+t.s3+HealthPath, 20*time.Second); err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: S3 site not serving: %v", k, err))
				t.s3 = ""
			}
		}
		if heavySite >= 0 {
			t.heavy = sites[heavySite].Listen
			if err := WaitServing(ctx, "http://"+t.heavy+HealthPath, 20*time.Second); err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: heavy-client site not serving: %v", k, err))
				t.heavy = ""
			}
		}
		targets = append(targets, t)
		logf("%s is up (pid %d)", k, p.Pid())
	}

	type wl struct {
		name string
		conc int
		op   func(t *target) (Op, error)
	}
	wls := []wl{
		{WFastGet1K, opt.Conc1K, func(t *target) (Op, error) { return FastGET(t.client, t.fast, 1024, 10000), nil }},
		{WFastGet1M, opt.ConcBig, func(t *target) (Op, error) { return FastGET(t.client, t.fast, 1<<20, 10000), nil }},
		{WFastPut1M, opt.ConcBig, func(t *target) (Op, error) { return FastPUT(t.client, t.fast, 1<<20, 10000), nil }},
	}
	if cluster != nil {
		wls = append(wls,
			wl{WS3Get1M, opt.ConcBig, func(t *target) (Op, error) { return S3GET(ctx, t.client, t.s3, s3User, s3Pass) }},
			wl{WS3Put1M, opt.ConcBig, func(t *target) (Op, error) { return S3PUT(ctx, t.client, t.s3, s3User, s3Pass) }},
			wl{WS3MP, opt.ConcMP, func(t *target) (Op, error) { return S3Multipart(t.client, t.s3, s3User, s3Pass, opt.ConcMP) }},
		)
	}
	if len(linkAddrs) > 0 {
		wls = append(wls, wl{WHeavy, HeavyConns, func(t *target) (Op, error) {
			if t.heavy == "" {
				return nil, fmt.Errorf("no heavy-client site")
			}
			// presigned like a real client's requests; the fast
			// backends ignore the signature
			return HeavyOp(ctx, NewHeavyClient(), t.heavy, "heavy-client", "heavy-client-secret")
		}})
	}
	ops := map[string]map[Kind]Op{}
	for _, w := range wls {
		ops[w.name] = map[Kind]Op{}
		for _, t := range targets {
			if strings.HasPrefix(w.name, "MinIO") && t.s3 == "" {
				continue
			}
			op, err := w.op(t)
			if err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s through %s not run: %v", w.name, t.kind, err))
				continue
			}
			ops[w.name][t.kind] = op
			rep.Cells = append(rep.Cells, &Cell{Workload: w.name, Kind: t.kind, Conc: w.conc})
		}
	}

	spec := func(conc int) LoadSpec {
		return LoadSpec{Concurrency: conc, Duration: opt.Duration, MaxRequests: opt.MaxRequests}
	}
	for r := 0; r < opt.Repeat; r++ {
		for _, w := range wls {
			// Rotate the order per repetition so no target always runs
			// right after the same neighbour.
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				op := ops[w.name][t.kind]
				if op == nil || ctx.Err() != nil {
					continue
				}
				pid := 0
				if t.proxy != nil {
					pid = t.proxy.Pid()
				}
				var before []faultproxy.Stats
				if w.name == WHeavy {
					for _, l := range links {
						before = append(before, l.Stats())
					}
				}
				res := RunClosed(ctx, spec(w.conc), op, pid)
				c := rep.Cell(w.name, t.kind)
				c.Runs = append(c.Runs, res)
				if w.name == WHeavy {
					per := make([]int64, len(links))
					for i, l := range links {
						st := l.Stats()
						per[i] = st.BytesToTarget - before[i].BytesToTarget + st.BytesFromTarget - before[i].BytesFromTarget
					}
					c.NodeBytes = append(c.NodeBytes, per)
				}
				logf("rep %d/%d %-22s %-12s %8.0f req/s p50 %-8s p99 %-8s errors %d", r+1, opt.Repeat, w.name, t.kind,
					res.RPS(), res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.Errors)
				if t.proxy != nil && !t.proxy.Alive() {
					rep.Notes = append(rep.Notes, fmt.Sprintf("%s exited during %s: %s", t.kind, w.name, tail(t.proxy.Output(), 500)))
				}
			}
		}
	}
	for _, t := range targets {
		if t.proxy != nil {
			if u, err := ReadProcUsage(t.proxy.Pid()); err == nil {
				rep.Peak[t.kind] = u
			}
			t.proxy.Stop()
			t.proxy = nil
		}
		t.client.Transport.(*http.Transport).CloseIdleConnections()
	}
	if cluster != nil && !opt.NoFaults && ctx.Err() == nil {
		logf("fault cells: %s per cell, %d req/s, %d repetitions", opt.Faults.Cell, opt.Faults.Rate, opt.Faults.Repeat)
		fr, notes := RunFaults(ctx, opt, cluster, dir, logf)
		rep.Faults = fr
		rep.Notes = append(rep.Notes, notes...)
	}
	if cluster != nil {
		_ = cluster.Stop()
	}

	if !opt.NoFailover {
		for _, k := range opt.Kinds {
			if k == KindDirect || rep.Skipped[k] != "" || ctx.Err() != nil {
				continue
			}
			logf("failover timeline through %s (%s)", k, opt.Failover.Duration)
			fr := RunFailover(ctx, k, opt.CaddyBin, dir, opt.Failover)
			logf("  %s: %d requests, %d errors, killed node got %d requests while down", k, fr.Requests, fr.Errors, fr.KilledHits)
			rep.Failover = append(rep.Failover, fr)
		}
	}
	return rep, ctx.Err()
}

// hashQuality measures ours, nginx's ketama and stock Caddy's query policy
// on 6 nodes.
func hashQuality(keys int) []HashRow {
	servers := make([]string, 6)
	for i := range servers {
		servers[i] = fmt.Sprintf("127.0.0.1:%d", 9101+i) // names only: never dialled
	}
	var rows []HashRow
	ours, cleanup, err := ModulePicker("session_affinity", `{"salt":"`+Salt+`"}`)
	if err != nil {
		rows = append(rows, HashRow{Policy: "ours: session_affinity (rendezvous)", Err: err.Error()})
	} else {
		rows = append(rows, HashRow{Policy: "ours: session_affinity (rendezvous)", Q: MeasureHashQuality(ours, servers, keys)})
		cleanup()
	}
	rows = append(rows,
		HashRow{Policy: "nginx: hash $arg_sessionid consistent (ketama, 160 points)", Q: MeasureHashQuality(&KetamaPicker{}, servers, keys)},
		HashRow{Policy: "stock Caddy: lb_policy query sessionid (HRW xxhash)", Q: MeasureHashQuality(CaddyQueryPicker(), servers, keys)},
	)
	return rows
}
