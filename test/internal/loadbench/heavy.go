package loadbench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/minio/minio-go/v7"
)

// The heavy-client workload: what MinIO's benchmark tool did to the
// original cluster. One client host, one User-Agent, HeavyConns
// connections, GETs and PUTs (3:1) of many objects, no sessionid: every
// request carries the same client fingerprint.
const (
	HeavyBucket     = "heavy"
	HeavyObjects    = 64      // objects the GETs read
	HeavyPutKeys    = 32      // keys the PUTs write
	HeavyObjectSize = 2 << 20 // bytes per object
	HeavyConns      = 16
	HeavyUserAgent  = "heavy-client/1.0 (one host, one benchmark tool)"
)

var heavyBody = bytes.Repeat(payload, HeavyObjectSize/len(payload))

// PrepareHeavy creates the heavy bucket and the objects the GETs read,
// straight on endpoint (a MinIO node, not through a throttled path).
func PrepareHeavy(ctx context.Context, endpoint, user, pass string) error {
	c, err := S3Client(endpoint, user, pass, "", nil)
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, HeavyBucket, minio.MakeBucketOptions{}); err != nil {
		if exists, e2 := c.BucketExists(ctx, HeavyBucket); e2 != nil || !exists {
			return fmt.Errorf("creating bucket %s: %w", HeavyBucket, err)
		}
	}
	for i := 0; i < HeavyObjects; i++ {
		_, err := c.PutObject(ctx, HeavyBucket, heavyObject(i), bytes.NewReader(heavyBody), HeavyObjectSize,
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
		if err != nil {
			return fmt.Errorf("uploading %s: %w", heavyObject(i), err)
		}
	}
	return nil
}

func heavyObject(i int) string { return fmt.Sprintf("obj-%03d", i) }

// NewHeavyClient is the heavy client's HTTP client: at most HeavyConns
// connections, all kept alive, no proxy from the environment.
func NewHeavyClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     HeavyConns,
		MaxIdleConnsPerHost: HeavyConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// HeavyOp is one request of the heavy client through endpoint (a proxy's
// S3 site): a GET of a random object (3 in 4) or a PUT of a random key,
// with presigned URLs (signed for endpoint; no sessionid) and the one
// User-Agent.
func HeavyOp(ctx context.Context, hc *http.Client, endpoint, user, pass string) (Op, error) {
	c, err := S3Client(endpoint, user, pass, "", nil)
	if err != nil {
		return nil, err
	}
	gets := make([]string, HeavyObjects)
	for i := range gets {
		u, err := c.Presign(ctx, http.MethodGet, HeavyBucket, heavyObject(i), time.Hour, nil)
		if err != nil {
			return nil, err
		}
		gets[i] = u.String()
	}
	puts := make([]string, HeavyPutKeys)
	for i := range puts {
		u, err := c.Presign(ctx, http.MethodPut, HeavyBucket, fmt.Sprintf("put-%03d", i), time.Hour, nil)
		if err != nil {
			return nil, err
		}
		puts[i] = u.String()
	}
	return func(ctx context.Context, _ int, rng *rand.Rand) (int64, error) {
		var req *http.Request
		var err error
		if rng.IntN(4) == 0 {
			req, err = http.NewRequestWithContext(ctx, http.MethodPut, puts[rng.IntN(len(puts))], bytes.NewReader(heavyBody))
			if err == nil {
				req.ContentLength = HeavyObjectSize
			}
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, gets[rng.IntN(len(gets))], nil)
		}
		if err != nil {
			return 0, err
		}
		req.Header.Set("User-Agent", HeavyUserAgent)
		req.Header.Set("Accept-Language", "en-US")
		n, err := doHTTP(hc, req)
		if req.Method == http.MethodPut && err == nil {
			n = HeavyObjectSize
		}
		if err == nil && n != HeavyObjectSize {
			err = fmt.Errorf("%s: %d bytes, want %d", req.Method, n, HeavyObjectSize)
		}
		return n, err
	}, nil
}

// Shares are the fractions of a total per node, in node order, and how
// the largest compares with the mean.
type Shares struct {
	Fractions   []float64
	MaxOverMean float64
}

// NodeShares turns per-node counts (requests or bytes) into shares.
func NodeShares(counts []int64) Shares {
	var total int64
	for _, c := range counts {
		total += c
	}
	s := Shares{Fractions: make([]float64, len(counts))}
	if total == 0 || len(counts) == 0 {
		return s
	}
	mean := float64(total) / float64(len(counts))
	for i, c := range counts {
		s.Fractions[i] = float64(c) / float64(total)
		s.MaxOverMean = max(s.MaxOverMean, float64(c)/mean)
	}
	return s
}

// String shows the shares as percentages in node order, e.g.
// "25/26/24/25% (max 1.04x mean)".
func (s Shares) String() string {
	if len(s.Fractions) == 0 {
		return "-"
	}
	out := ""
	for i, f := range s.Fractions {
		if i > 0 {
			out += "/"
		}
		out += fmt.Sprintf("%.0f", 100*f)
	}
	return fmt.Sprintf("%s%% (max %.2fx mean)", out, s.MaxOverMean)
}

// SortedDesc returns the fractions largest first (node identity dropped),
// for comparing configurations whose busiest node differs.
func (s Shares) SortedDesc() []float64 {
	out := append([]float64(nil), s.Fractions...)
	sort.Sort(sort.Reverse(sort.Float64Slice(out)))
	return out
}
