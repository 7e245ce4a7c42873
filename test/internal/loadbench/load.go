package loadbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one request (or one multipart upload) of a workload. It returns the
// payload bytes it moved.
type Op func(ctx context.Context, worker int, rng *rand.Rand) (int64, error)

// LoadSpec bounds a closed-loop run: Concurrency workers each send one
// request after the other until Duration has passed or MaxRequests were
// started, whichever comes first.
type LoadSpec struct {
	Concurrency int
	Duration    time.Duration
	MaxRequests int
}

// NewClient is an HTTP client for one target: no proxy from the
// environment (traffic stays on loopback), no compression, enough idle
// connections for every worker.
func NewClient(conns int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// RunClosed runs op under spec and measures it; pid (if > 0) is the proxy
// process whose CPU and RSS are read before and after.
func RunClosed(ctx context.Context, spec LoadSpec, op Op, pid int) Result {
	ctx, cancel := context.WithTimeout(ctx, spec.Duration)
	defer cancel()
	var before ProcUsage
	if pid > 0 {
		before, _ = ReadProcUsage(pid)
	}
	var started atomic.Int64
	type workerOut struct {
		lat       []time.Duration
		n, errs   int
		bytes     int64
		errSample string
	}
	outs := make([]workerOut, spec.Concurrency)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < spec.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(t0.UnixNano())))
			o := &outs[w]
			for ctx.Err() == nil && started.Add(1) <= int64(spec.MaxRequests) {
				s := time.Now()
				n, err := op(ctx, w, rng)
				d := time.Since(s)
				if ctx.Err() != nil && err != nil {
					// Cut by the end of the run, not a failure of the target.
					break
				}
				o.n++
				o.bytes += n
				if err != nil {
					o.errs++
					if o.errSample == "" {
						o.errSample = err.Error()
					}
					continue
				}
				o.lat = append(o.lat, d)
			}
		}(w)
	}
	wg.Wait()
	r := Result{Elapsed: time.Since(t0), CPUSecs: -1, RSSBytes: -1}
	var lat []time.Duration
	for _, o := range outs {
		r.Requests += o.n
		r.Errors += o.errs
		r.Bytes += o.bytes
		lat = append(lat, o.lat...)
		if r.ErrSample == "" {
			r.ErrSample = o.errSample
		}
	}
	r.P50 = Percentile(lat, 50)
	r.P99 = Percentile(lat, 99)
	if pid > 0 {
		if after, err := ReadProcUsage(pid); err == nil {
			r.CPUSecs = after.CPUSecs - before.CPUSecs
			r.RSSBytes = after.RSS
		}
	}
	return r
}

// doHTTP sends req and reads the whole answer; a non-2xx answer is an error.
func doHTTP(c *http.Client, req *http.Request) (int64, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return n, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return n, err
}

// sessionQuery is the query of a request of session i.
func sessionQuery(i int) string { return fmt.Sprintf("sessionid=s%06d", i) }

// FastGET fetches size-byte objects from a fast backend (through a proxy),
// each request with one of sessions session ids.
func FastGET(c *http.Client, base string, size, sessions int) Op {
	return func(ctx context.Context, _ int, rng *rand.Rand) (int64, error) {
		url := fmt.Sprintf("%s/obj/%d?%s", base, size, sessionQuery(rng.IntN(sessions)))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		return doHTTP(c, req)
	}
}

// FastPUT uploads size-byte bodies to a fast backend.
func FastPUT(c *http.Client, base string, size, sessions int) Op {
	body := payload[:min(size, len(payload))]
	return func(ctx context.Context, _ int, rng *rand.Rand) (int64, error) {
		url := fmt.Sprintf("%s/obj/put?%s", base, sessionQuery(rng.IntN(sessions)))
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.ContentLength = int64(len(body))
		if _, err := doHTTP(c, req); err != nil {
			return 0, err
		}
		return int64(len(body)), nil
	}
}
