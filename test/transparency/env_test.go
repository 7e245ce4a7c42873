package transparency

import (
	"net/http"
	"testing"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// env is MinIO plus the two proxies in front of it.
type env struct {
	Upstreams []string // MinIO S3 addresses
	Direct    target   // the first MinIO node
	Ours      target   // Caddy configured like examples/Caddyfile
	Stock     target   // Caddy with a bare reverse_proxy
	OursCfg   *proxy
	Bucket    string
}

// targets in the order every operation runs: direct first (the reference).
func (e *env) targets() []target { return []target{e.Direct, e.Ours, e.Stock} }

func setupEnv(tb testing.TB) *env {
	tb.Helper()
	cluster := miniocluster.StartT(tb, miniocluster.Options{Nodes: 4, RootUser: accessKey, RootPassword: secretKey})
	upstreams := cluster.S3Addrs()
	bin := caddyBin(tb)
	f := detectFeatures(tb, bin)
	tb.Logf("proxy under test: %s", f)
	ours := startProxy(tb, "ours", oursTemplate, upstreams, f)
	stock := startProxy(tb, "stock", stockTemplate, upstreams, proxyFeatures{})
	e := &env{
		Upstreams: upstreams,
		Direct:    target{Name: "direct", Addr: upstreams[0]},
		Ours:      target{Name: "ours", Addr: ours.Addr, Pid: ours.Pid},
		Stock:     target{Name: "stock", Addr: stock.Addr, Pid: stock.Pid},
		OursCfg:   ours,
		Bucket:    "transparency",
	}
	r, err := do(rawRequest{Request: signV4(newRequest(e.Direct, http.MethodPut, "/"+e.Bucket, nil), nil, accessKey, secretKey)})
	if err != nil {
		tb.Fatalf("create bucket %s: %v", e.Bucket, err)
	}
	if r.Status != 200 {
		tb.Fatalf("create bucket %s: %s\n%s", e.Bucket, r, r.Body)
	}
	return e
}
