package traffic

import (
	"fmt"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkBeginEnd: what the transport pays per attempt. serial is one
// goroutine; parallel is every core on the same node (the contended case:
// all attempts of a hot node bump the same counters).
func BenchmarkBeginEnd(b *testing.B) {
	ops := []s3op.Op{s3op.GetObject, s3op.PutObject, s3op.HeadObject, s3op.ListObjects}
	b.Run("serial", func(b *testing.B) {
		n := newRegistry(nil).node("p", "a:1")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			n.Begin()
			n.End(ops[i&3], 200, time.Duration(i&1023)*time.Microsecond, OK, 100, 1000)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		n := newRegistry(nil).node("p", "a:1")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				n.Begin()
				n.End(ops[i&3], 200, time.Duration(i&1023)*time.Microsecond, OK, 100, 1000)
				i++
			}
		})
	})
}

// BenchmarkFor: looking a node up (the transport should cache it; this is
// the cost when it does not).
func BenchmarkFor(b *testing.B) {
	r := newRegistry(nil)
	for i := range 6 {
		r.node("s3", fmt.Sprintf("10.0.0.%d:9000", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		r.node("s3", "10.0.0.3:9000")
	}
}

// BenchmarkCollect: one /metrics scrape of the traffic collector, for two
// pools of 6 nodes where every node served 8 operation classes with 3
// status classes and 2 outcomes and retried to every other node: about
// 60 series per node.
func BenchmarkCollect(b *testing.B) {
	r := newRegistry(nil)
	for _, pool := range []string{"s3", "console"} {
		var nodes []*Node
		for i := range 6 {
			nodes = append(nodes, r.node(pool, fmt.Sprintf("10.0.0.%d:9000", i)))
		}
		for _, n := range nodes {
			for op := range s3op.Op(8) {
				for _, st := range []int{200, 404, 503} {
					for _, o := range []Outcome{OK, Retried} {
						n.Begin()
						n.End(op, st, 3*time.Millisecond, o, 10, 10)
					}
				}
			}
			for _, m := range nodes {
				if m != n {
					n.Retry(m)
				}
			}
		}
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collector{r: r}); err != nil {
		b.Fatal(err)
	}
	mfs, _ := reg.Gather()
	series := 0
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(series), "series")
}

// BenchmarkWindow: the status page's cost per node.
func BenchmarkWindow(b *testing.B) {
	r := newRegistry(nil)
	n := r.node("p", "a:1")
	for i := range 1000 {
		n.Begin()
		n.End(s3op.GetObject, 200, time.Duration(i)*time.Microsecond, OK, 1, 1)
	}
	now := time.Now()
	for i := range ringLen {
		r.sampleAll(now.Add(time.Duration(i-ringLen) * SampleEvery))
	}
	b.ReportAllocs()
	for b.Loop() {
		n.Window(now)
	}
}
