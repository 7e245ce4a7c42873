package traffic

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable time source for a test registry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// scrape gathers a registry's metrics as "name{k=v,...}" → value (a
// histogram as name_count and name_sum).
func scrape(t testing.TB, r *registry) map[string]float64 {
	t.Helper()
	preg := prometheus.NewPedanticRegistry()
	require.NoError(t, preg.Register(collector{r: r}))
	mfs, err := preg.Gather()
	require.NoError(t, err)
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := func(suffix string) string {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				return mf.GetName() + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
				for _, b := range m.GetHistogram().GetBucket() {
					out[key(fmt.Sprintf("_bucket_le_%g", b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// only keeps the entries of m whose key starts with prefix.
func only(m map[string]float64, prefix string) map[string]float64 {
	out := make(map[string]float64)
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

type attempt struct {
	op       s3op.Op
	status   int
	ttfb     time.Duration
	outcome  Outcome
	in, out  int64
	finished bool // false: Begin only
}

func TestEndCounts(t *testing.T) {
	const rq = "caddy_minio_lb_requests_total{"
	tests := []struct {
		name     string
		attempts []attempt
		want     map[string]float64 // requests_total series
		inFlight float64
		bytesIn  float64
		bytesOut float64
	}{
		{"one ok get", []attempt{{s3op.GetObject, 200, time.Millisecond, OK, 0, 1000, true}},
			map[string]float64{rq + "node=n1,op=get_object,outcome=ok,pool=p,status=2xx}": 1}, 0, 0, 1000},
		{"status classes and outcomes", []attempt{
			{s3op.PutObject, 200, time.Millisecond, OK, 500, 0, true},
			{s3op.PutObject, 200, time.Millisecond, OK, 500, 0, true},
			{s3op.HeadObject, 404, time.Millisecond, OK, 0, 0, true},
			{s3op.GetObject, 503, time.Millisecond, Retried, 0, 0, true},
			{s3op.GetObject, 0, 0, Failed, 0, 0, true},
			{s3op.ListObjects, 0, 0, Cancelled, 0, 0, true},
			{s3op.Other, 101, time.Millisecond, OK, 0, 0, true},
			{s3op.Other, 302, time.Millisecond, OK, 0, 0, true},
		}, map[string]float64{
			rq + "node=n1,op=put_object,outcome=ok,pool=p,status=2xx}":           2,
			rq + "node=n1,op=head_object,outcome=ok,pool=p,status=4xx}":          1,
			rq + "node=n1,op=get_object,outcome=retried,pool=p,status=5xx}":      1,
			rq + "node=n1,op=get_object,outcome=failed,pool=p,status=none}":      1,
			rq + "node=n1,op=list_objects,outcome=cancelled,pool=p,status=none}": 1,
			rq + "node=n1,op=other,outcome=ok,pool=p,status=1xx}":                1,
			rq + "node=n1,op=other,outcome=ok,pool=p,status=3xx}":                1,
		}, 0, 1000, 0},
		{"out of range values fold into other/none/failed", []attempt{
			{s3op.Op(200), 700, time.Millisecond, Outcome(9), -5, -5, true},
		}, map[string]float64{rq + "node=n1,op=other,outcome=failed,pool=p,status=none}": 1}, 0, 0, 0},
		{"in flight", []attempt{
			{op: s3op.GetObject}, {op: s3op.GetObject},
			{s3op.GetObject, 200, time.Millisecond, OK, 0, 10, true},
		}, map[string]float64{rq + "node=n1,op=get_object,outcome=ok,pool=p,status=2xx}": 1}, 2, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(newClock().now)
			n := r.node("p", "n1")
			for _, a := range tt.attempts {
				n.Begin()
				if a.finished {
					n.End(a.op, a.status, a.ttfb, a.outcome, a.in, a.out)
				}
			}
			m := scrape(t, r)
			assert.Equal(t, tt.want, only(m, rq))
			assert.Equal(t, tt.inFlight, m["caddy_minio_lb_in_flight{node=n1,pool=p}"])
			assert.Equal(t, tt.bytesIn, m["caddy_minio_lb_bytes_in_total{node=n1,pool=p}"])
			assert.Equal(t, tt.bytesOut, m["caddy_minio_lb_bytes_out_total{node=n1,pool=p}"])
		})
	}
}

func TestFirstByteHistogram(t *testing.T) {
	r := newRegistry(newClock().now)
	n := r.node("p", "n1")
	for _, d := range []time.Duration{300 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond, 40 * time.Second} {
		n.Begin()
		n.End(s3op.GetObject, 200, d, OK, 0, 0)
	}
	// No response: no latency, whatever ttfb says.
	n.Begin()
	n.End(s3op.GetObject, 0, 10*time.Second, Failed, 0, 0)
	n.Begin()
	n.End(s3op.PutObject, 500, -time.Second, Failed, 0, 0) // clamped to 0
	m := scrape(t, r)
	const h = "caddy_minio_lb_first_byte_seconds"
	get := func(suffix string) float64 { return m[h+suffix+"{node=n1,op=get_object,pool=p}"] }
	assert.Equal(t, 4.0, get("_count"))
	assert.InDelta(t, 40.0043, get("_sum"), 1e-9)
	assert.Equal(t, 1.0, get("_bucket_le_0.0005"))
	assert.Equal(t, 1.0, get("_bucket_le_0.001"))
	assert.Equal(t, 3.0, get("_bucket_le_0.0025"))
	assert.Equal(t, 3.0, get("_bucket_le_30"))
	assert.Equal(t, 1.0, m[h+"_count{node=n1,op=put_object,pool=p}"])
	assert.Equal(t, 1.0, m[h+"_bucket_le_0.0005{node=n1,op=put_object,pool=p}"])
	_, listed := m[h+"_count{node=n1,op=head_object,pool=p}"]
	assert.False(t, listed, "an operation without observations has no histogram")
}

func TestStatusClass(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{{0, "none"}, {-1, "none"}, {99, "none"}, {100, "1xx"}, {200, "2xx"}, {204, "2xx"}, {304, "3xx"},
		{404, "4xx"}, {429, "4xx"}, {500, "5xx"}, {599, "5xx"}, {600, "none"}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, statusNames[statusClass(tt.status)], "status %d", tt.status)
	}
}

func TestOutcomeString(t *testing.T) {
	assert.Equal(t, []string{"ok", "retried", "failed", "cancelled", "unknown"},
		[]string{OK.String(), Retried.String(), Failed.String(), Cancelled.String(), Outcome(7).String()})
}

func TestRetriesHedgesRefusals(t *testing.T) {
	r := newRegistry(newClock().now)
	a, b, c := r.node("p", "a:1"), r.node("p", "b:1"), r.node("p", "c:1")
	other := r.node("q", "x:1")
	a.Retry(b)
	a.Retry(b)
	a.Retry(c)
	b.Retry(a)
	a.Retry(other) // another pool
	a.Retry(nil)
	b.Hedge(true)
	b.Hedge(false)
	b.Hedge(false)
	c.Busy()
	c.Busy()
	c.ShuttingDown()
	m := scrape(t, r)
	assert.Equal(t, map[string]float64{
		"caddy_minio_lb_retries_total{from=a:1,pool=p,to=b:1}":       2,
		"caddy_minio_lb_retries_total{from=a:1,pool=p,to=c:1}":       1,
		"caddy_minio_lb_retries_total{from=a:1,pool=p,to=_overflow}": 2,
		"caddy_minio_lb_retries_total{from=b:1,pool=p,to=a:1}":       1,
	}, only(m, "caddy_minio_lb_retries_total"))
	assert.Equal(t, 1.0, m["caddy_minio_lb_hedges_total{node=b:1,pool=p,result=won}"])
	assert.Equal(t, 2.0, m["caddy_minio_lb_hedges_total{node=b:1,pool=p,result=lost}"])
	assert.Equal(t, 0.0, m["caddy_minio_lb_hedges_total{node=a:1,pool=p,result=won}"])
	assert.Equal(t, 2.0, m["caddy_minio_lb_refusals_total{node=c:1,pool=p,reason=busy}"])
	assert.Equal(t, 1.0, m["caddy_minio_lb_refusals_total{node=c:1,pool=p,reason=shutdown}"])
}

func TestHolds(t *testing.T) {
	r := newRegistry(newClock().now)
	p := r.pool("p")
	p.HoldBegin()
	p.HoldBegin()
	p.HoldBegin()
	p.HoldBegin()
	p.Hold(200*time.Millisecond, HoldServed)
	p.Hold(5*time.Second, HoldExpired)
	p.Hold(0, HoldCancelled)
	p.HoldRejected()
	assert.Equal(t, int64(1), p.Holding())
	m := scrape(t, r)
	assert.Equal(t, 1.0, m["caddy_minio_lb_holding{pool=p}"])
	assert.Equal(t, 1.0, m["caddy_minio_lb_holds_total{pool=p,result=served}"])
	assert.Equal(t, 1.0, m["caddy_minio_lb_holds_total{pool=p,result=expired}"])
	assert.Equal(t, 1.0, m["caddy_minio_lb_holds_total{pool=p,result=rejected}"])
	assert.Equal(t, 1.0, m["caddy_minio_lb_holds_total{pool=p,result=cancelled}"])
	assert.Equal(t, 3.0, m["caddy_minio_lb_hold_wait_seconds_count{pool=p}"])
	assert.InDelta(t, 5.2, m["caddy_minio_lb_hold_wait_seconds_sum{pool=p}"], 1e-9)
	assert.Equal(t, 2.0, m["caddy_minio_lb_hold_wait_seconds_bucket_le_0.25{pool=p}"])
	assert.Equal(t, []string{"served", "expired", "cancelled", "unknown"},
		[]string{HoldServed.String(), HoldExpired.String(), HoldCancelled.String(), HoldResult(9).String()})

	// A pool without holds still exports its hold series, at zero.
	r2 := newRegistry(newClock().now)
	r2.pool("quiet")
	m = scrape(t, r2)
	assert.Equal(t, 0.0, m["caddy_minio_lb_hold_wait_seconds_count{pool=quiet}"])
	assert.Contains(t, m, "caddy_minio_lb_holds_total{pool=quiet,result=expired}")
}

func TestNilSafe(t *testing.T) {
	var n *Node
	var p *PoolStats
	assert.NotPanics(t, func() {
		n.Begin()
		n.End(s3op.GetObject, 200, time.Millisecond, OK, 1, 1)
		n.Retry(nil)
		n.Hedge(true)
		n.Busy()
		n.ShuttingDown()
		p.HoldBegin()
		p.Hold(time.Second, HoldServed)
		p.HoldRejected()
	})
	assert.Equal(t, Window{}, n.Window(time.Now()))
	assert.Equal(t, Window{}, p.Window(time.Now()))
	assert.Zero(t, n.InFlight())
	assert.Zero(t, p.Holding())
	assert.Nil(t, p.Nodes())
}

func TestRegistryLookupAndBounds(t *testing.T) {
	r := newRegistry(newClock().now)
	assert.Nil(t, r.lookup("p", "a:1"))
	assert.Nil(t, r.lookupPool("p"))
	a := r.node("p", "a:1")
	assert.Same(t, a, r.node("p", "a:1"), "get-or-create returns the same node")
	assert.Same(t, a, r.lookup("p", "a:1"))
	assert.Nil(t, r.lookup("p", "b:1"))
	assert.Nil(t, r.lookup("q", "a:1"))
	assert.NotSame(t, a, r.node("q", "a:1"), "pools do not share nodes")
	assert.Same(t, a.Pool(), r.pool("p"))
	assert.Equal(t, "a:1", a.Name())
	assert.Equal(t, "p", a.Pool().Name())

	// Nodes past MaxPoolNodes share the overflow node.
	for i := 1; i < MaxPoolNodes; i++ {
		r.node("p", fmt.Sprintf("n%d:1", i))
	}
	assert.Len(t, r.pool("p").Nodes(), MaxPoolNodes)
	o1, o2 := r.node("p", "late1:1"), r.node("p", "late2:1")
	assert.Same(t, o1, o2)
	assert.Equal(t, OverflowName, o1.Name())
	assert.Len(t, r.pool("p").Nodes(), MaxPoolNodes+1)
	assert.Nil(t, r.lookup("p", "late1:1"))
	a.Retry(o1)
	o1.Retry(a)
	m := scrape(t, r)
	assert.Equal(t, 1.0, m["caddy_minio_lb_retries_total{from=a:1,pool=p,to=_overflow}"])
	assert.Equal(t, 1.0, m["caddy_minio_lb_retries_total{from=_overflow,pool=p,to=a:1}"])

	// Pools past MaxPools share the overflow pool.
	for i := len(r.poolList()); i < MaxPools; i++ {
		r.pool(fmt.Sprintf("pool%d", i))
	}
	op1, op2 := r.pool("late-a"), r.pool("late-b")
	assert.Same(t, op1, op2)
	assert.Equal(t, OverflowName, op1.Name())
	assert.Nil(t, r.lookupPool("late-a"))
	assert.Same(t, op1, r.node("late-c", "z:1").Pool())

	// A forgotten pool leaves the registry and makes room for a new name;
	// forgetting a name never used changes nothing.
	last := fmt.Sprintf("pool%d", MaxPools-1)
	forgotten := r.lookupPool(last)
	require.NotNil(t, forgotten)
	r.forget(last)
	r.forget("never-used")
	assert.Nil(t, r.lookupPool(last))
	assert.NotContains(t, r.poolList(), forgotten)
	late := r.pool("late-d")
	assert.Equal(t, "late-d", late.Name())
	assert.Same(t, late, r.lookupPool("late-d"))
	assert.Equal(t, "_overflow", r.pool("late-e").Name(), "full again")
}

// TestConcurrentUse: attempts, retries, scrapes, samples and windows at
// once (run with -race); the counts add up in the end.
func TestConcurrentUse(t *testing.T) {
	c := newClock()
	r := newRegistry(c.now)
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			scrape(t, r)
			r.sampleAll(c.add(time.Second))
			for _, p := range r.poolList() {
				p.Window(c.now())
				for _, n := range p.Nodes() {
					n.Window(c.now())
				}
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := r.node("p", fmt.Sprintf("n%d:1", w%3))
			b := r.node("p", fmt.Sprintf("n%d:1", (w+1)%3))
			for i := range per {
				a.Begin()
				a.End(s3op.Op(i%s3op.Count), 200+(i%4)*100, time.Duration(i)*time.Microsecond, Outcome(i%4), 1, 2)
				a.Retry(b)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	m := scrape(t, r)
	var reqs, retries, in, out float64
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "caddy_minio_lb_requests_total{"):
			reqs += v
		case strings.HasPrefix(k, "caddy_minio_lb_retries_total{"):
			retries += v
		case strings.HasPrefix(k, "caddy_minio_lb_bytes_in_total{"):
			in += v
		case strings.HasPrefix(k, "caddy_minio_lb_bytes_out_total{"):
			out += v
		case strings.HasPrefix(k, "caddy_minio_lb_in_flight{"):
			assert.Zero(t, v, k)
		}
	}
	assert.Equal(t, float64(workers*per), reqs)
	assert.Equal(t, float64(workers*per), retries)
	assert.Equal(t, float64(workers*per), in)
	assert.Equal(t, float64(2*workers*per), out)
}

func TestZeroAllocs(t *testing.T) {
	r := newRegistry(nil)
	n, m := r.node("p", "a:1"), r.node("p", "b:1")
	p := r.pool("p")
	tests := []struct {
		name string
		f    func()
	}{
		{"Begin+End", func() { n.Begin(); n.End(s3op.GetObject, 200, 3*time.Millisecond, OK, 10, 1000) }},
		{"End no response", func() { n.Begin(); n.End(s3op.PutObject, 0, 0, Failed, 10, 0) }},
		{"Retry", func() { n.Retry(m) }},
		{"Hedge", func() { n.Hedge(true) }},
		{"Busy", func() { n.Busy() }},
		{"ShuttingDown", func() { n.ShuttingDown() }},
		{"Hold", func() { p.HoldBegin(); p.Hold(time.Millisecond, HoldServed); p.HoldRejected() }},
		{"For existing", func() { r.node("p", "a:1") }},
		{"Lookup", func() { r.lookup("p", "b:1") }},
	}
	for _, tt := range tests {
		assert.Zero(t, testing.AllocsPerRun(200, tt.f), tt.name)
	}
}

func TestRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, Register(reg))
	require.NoError(t, Register(reg), "a second module of the same config finds it there")
	require.NoError(t, Register(nil))
	For("register-once-test", "a:1").Busy()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	assert.Contains(t, names, "caddy_minio_lb_refusals_total")
	assert.Same(t, For("register-once-test", "a:1"), Lookup("register-once-test", "a:1"))
	assert.Same(t, Pool("register-once-test"), LookupPool("register-once-test"))
}

func TestMetricNames(t *testing.T) {
	names := MetricNames()
	assert.Len(t, names, len(allDescs))
	for _, n := range names {
		assert.True(t, strings.HasPrefix(n, Namespace), n)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for i := 1; i < len(sorted); i++ {
		assert.NotEqual(t, sorted[i-1], sorted[i], "duplicate metric name")
	}
	// Every name shows up in a scrape once something was recorded.
	r := newRegistry(nil)
	n := r.node("p", "a:1")
	n.Begin()
	n.End(s3op.GetObject, 200, time.Millisecond, OK, 1, 1)
	n.Retry(r.node("p", "b:1"))
	m := scrape(t, r)
	for _, name := range names {
		found := false
		for k := range m {
			if strings.HasPrefix(k, name+"{") || strings.HasPrefix(k, name+"_") {
				found = true
				break
			}
		}
		assert.True(t, found, "%s not scraped", name)
	}
}
