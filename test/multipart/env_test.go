package multipart

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/stretchr/testify/require"
)

const region = "us-east-1"

// env is one cluster and one Caddy running examples/Caddyfile.
type env struct {
	c          *miniocluster.Cluster
	caddy      *caddyproc.Caddy
	proxy      string // host:port of the S3 site
	user, pass string
}

// startCaddy runs the Caddyfile text (examples/Caddyfile, possibly
// edited) in front of c on free loopback ports; it returns the S3 address.
func startCaddy(t *testing.T, c *miniocluster.Cluster, caddyfile string) (*caddyproc.Caddy, string) {
	t.Helper()
	ports, err := freeport.Ports(2)
	require.NoError(t, err)
	env := caddyproc.ExampleEnv(c, caddyproc.Sites{S3Port: ports[0], ConsolePort: ports[1], Salt: "multipart-salt"})
	cp := caddyproc.StartT(t, caddyproc.Options{Caddyfile: caddyfile, Env: env})
	return cp, "127.0.0.1:" + strconv.Itoa(ports[0])
}

func exampleCaddyfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(caddyproc.RepoRootT(t), "examples", "Caddyfile"))
	require.NoError(t, err)
	return string(b)
}

func startEnv(t *testing.T) *env {
	t.Helper()
	c := miniocluster.StartT(t, miniocluster.Options{})
	user, pass := c.Credentials()
	cp, addr := startCaddy(t, c, exampleCaddyfile(t))
	return &env{c: c, caddy: cp, proxy: addr, user: user, pass: pass}
}

// core is a minio-go client of addr whose User-Agent names app (its
// fingerprint through the proxy).
func (e *env) core(t *testing.T, addr, app string) *minio.Core {
	t.Helper()
	cl, err := minio.NewCore(addr, &minio.Options{Creds: credentials.NewStaticV4(e.user, e.pass, ""), Region: region})
	require.NoError(t, err)
	if app != "" {
		cl.SetAppInfo(app, "1.0")
	}
	return cl
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// rawList sends a SigV4-signed GET /<bucket>?<query> to addr (a node or
// the proxy) and returns the answer as received.
func (e *env) rawList(t *testing.T, addr, bucket, query string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/"+bucket+"?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req.Header.Set("User-Agent", "multipart-test")
	req = signer.SignV4(*req, e.user, e.pass, "", region)
	var resp *http.Response
	for try := 0; try < 5; try++ { // MinIO answers 503 for a moment right after start
		resp, err = http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		if resp.StatusCode != http.StatusServiceUnavailable || addr == e.proxy {
			break
		}
		resp.Body.Close()
		time.Sleep(200 * time.Millisecond)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// listResult is the part of ListMultipartUploadsResult the tests compare.
type listResult struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string
	NextUploadIDMarker string `xml:"NextUploadIdMarker"`
	Delimiter          string
	Prefix             string
	EncodingType       string
	MaxUploads         int
	IsTruncated        bool
	Uploads            []struct {
		Key       string
		UploadID  string `xml:"UploadId"`
		Initiated string
	} `xml:"Upload"`
	CommonPrefixes []struct{ Prefix string }
}

func decode(t *testing.T, a answer) listResult {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	var r listResult
	require.NoError(t, xml.Unmarshal(a.body, &r), "%s", a.body)
	return r
}

// item is an upload (key#id) or a common prefix (P:prefix) of a page.
func items(r listResult) []string {
	var out []string
	for _, u := range r.Uploads {
		out = append(out, u.Key+"#"+u.UploadID)
	}
	for _, p := range r.CommonPrefixes {
		out = append(out, "P:"+p.Prefix)
	}
	return out
}

// page is what one page says, for comparisons.
type page struct {
	Items              []string
	IsTruncated        bool
	NextKeyMarker      string
	NextUploadIDMarker string
}

// walk pages through the listing of bucket at addr with query base plus
// max-uploads=size (0: none), following NextKeyMarker and
// NextUploadIdMarker, at most 500 pages.
func (e *env) walk(t *testing.T, addr, bucket, base string, size int) []page {
	t.Helper()
	var pages []page
	km, um, next := "", "", false
	for n := 0; n < 500; n++ {
		q := base
		if size > 0 {
			q += "&max-uploads=" + strconv.Itoa(size)
		}
		if next {
			q = withMarkers(base, size, km, um)
		}
		r := decode(t, e.rawList(t, addr, bucket, q))
		pages = append(pages, page{Items: items(r), IsTruncated: r.IsTruncated, NextKeyMarker: r.NextKeyMarker, NextUploadIDMarker: r.NextUploadIDMarker})
		if !r.IsTruncated {
			return pages
		}
		km, um, next = r.NextKeyMarker, r.NextUploadIDMarker, true
		if strings.EqualFold(queryValue(base, "encoding-type"), "url") {
			var err error
			km, err = url.QueryUnescape(km)
			require.NoError(t, err)
		}
	}
	t.Fatalf("%s %s: no last page after 500 pages", addr, base)
	return nil
}

// withMarkers is base with max-uploads=size (if > 0) and the markers of
// the next page in place of any the base query had.
func withMarkers(base string, size int, km, um string) string {
	v, _ := url.ParseQuery(base)
	v.Del("uploads")
	v.Set("key-marker", km)
	v.Set("upload-id-marker", um)
	if size > 0 {
		v.Set("max-uploads", strconv.Itoa(size))
	}
	return "uploads&" + v.Encode()
}

func queryValue(q, name string) string {
	v, _ := url.ParseQuery(q)
	return v.Get(name)
}

// uploadsOf lists every upload id of a walk.
func uploadsOf(pages []page) []string {
	var out []string
	for _, p := range pages {
		for _, it := range p.Items {
			if i := strings.Index(it, "#"); i >= 0 && !strings.HasPrefix(it, "P:") {
				out = append(out, it[i+1:])
			}
		}
	}
	sort.Strings(out)
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func nodeName(c *miniocluster.Cluster, addr string) string {
	for i, a := range c.S3Addrs() {
		if a == addr {
			return fmt.Sprintf("node%d", i+1)
		}
	}
	return addr
}
