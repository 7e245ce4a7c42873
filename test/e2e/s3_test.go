package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const mib = 1 << 20

// testS3MinioGo drives the S3 site with minio-go: the basic object
// operations, presigned GET and PUT, multipart uploads with and without a
// sessionid, and shows from the access log that each session and each
// multipart upload stayed on one node.
func testS3MinioGo(t *testing.T, e *env) {
	ctx := ctxT(t, 3*time.Minute)
	from, mark := e.caddy.LogSize(), sentRequests.Mark()
	const app = "e2e-fingerprint-session"
	cl := e.s3Client(t, app)
	bucket := "e2e-minio-go"

	// Basic operations, one fingerprint session (same IP, same UA).
	if err := cl.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil && !ownedAlready(err) {
		t.Fatalf("make bucket: %v", err)
	}
	body := randomBytes(1*mib+123, 1)
	sum := sha256.Sum256(body)
	if _, err := cl.PutObject(ctx, bucket, "dir/one", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
		t.Fatalf("put: %v", err)
	}
	st, err := cl.StatObject(ctx, bucket, "dir/one", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(body)) {
		t.Fatalf("head: size %d err %v, want %d", st.Size, err, len(body))
	}
	assertGetHash(t, ctx, cl, bucket, "dir/one", sum)
	var listed []string
	for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list: %v", o.Err)
		}
		listed = append(listed, o.Key)
	}
	if strings.Join(listed, ",") != "dir/one" {
		t.Fatalf("list: got %v, want [dir/one]", listed)
	}

	// Presigned GET and PUT through the proxy, plain HTTP client.
	pbody := randomBytes(300<<10, 2)
	putURL, err := cl.PresignedPutObject(ctx, bucket, "presigned", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	httpDo(t, http.MethodPut, putURL.String(), pbody, http.StatusOK)
	getURL, err := cl.PresignedGetObject(ctx, bucket, "presigned", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := httpDo(t, http.MethodGet, getURL.String(), nil, http.StatusOK); sha256.Sum256(got) != sha256.Sum256(pbody) {
		t.Fatalf("presigned GET: %d bytes with another hash than the %d uploaded", len(got), len(pbody))
	}

	// A session by sessionid: presigned URLs with sessionid signed in.
	const sess = "e2e-session-42"
	for i := 0; i < 6; i++ {
		obj := fmt.Sprintf("sess/%d", i)
		q := url.Values{"sessionid": {sess}}
		u, err := cl.Presign(ctx, http.MethodPut, bucket, obj, time.Hour, q)
		if err != nil {
			t.Fatal(err)
		}
		httpDo(t, http.MethodPut, u.String(), pbody[:1000*(i+1)], http.StatusOK)
		u, _ = cl.Presign(ctx, http.MethodHead, bucket, obj, time.Hour, q)
		httpDo(t, http.MethodHead, u.String(), nil, http.StatusOK)
		u, _ = cl.Presign(ctx, http.MethodGet, bucket, obj, time.Hour, q)
		if got := httpDo(t, http.MethodGet, u.String(), nil, http.StatusOK); !bytes.Equal(got, pbody[:1000*(i+1)]) {
			t.Fatalf("session GET %s: wrong bytes", obj)
		}
	}

	// Multipart without a sessionid: minio-go splits 16 MiB into 5 MiB parts
	// (4 parts). The s3_multipart source keys create, parts and complete on
	// the object, so they reach one node.
	mbody := randomBytes(16*mib, 3)
	msum := sha256.Sum256(mbody)
	if _, err := cl.PutObject(ctx, bucket, "multi/nosession", bytes.NewReader(mbody), int64(len(mbody)),
		minio.PutObjectOptions{PartSize: 5 * mib, NumThreads: 2}); err != nil {
		t.Fatalf("multipart put: %v", err)
	}
	assertGetHash(t, ctx, cl, bucket, "multi/nosession", msum)

	// Multipart with a sessionid: every call presigned with sessionid.
	const msess = "e2e-multipart-session"
	presignedMultipart(t, ctx, cl, bucket, "multi/session", msess, mbody[:15*mib], 5*mib)
	assertGetHash(t, ctx, cl, bucket, "multi/session", sha256.Sum256(mbody[:15*mib]))

	// What does not carry a sessionid, and why:
	// 1. minio-go's GetObjectOptions.SetReqParam drops any parameter that
	//    is not an S3 one or x-*: the request goes out without it and is
	//    keyed by the fingerprint.
	var opts minio.GetObjectOptions
	opts.SetReqParam("sessionid", "dropped-by-minio-go")
	o, err := cl.GetObject(ctx, bucket, "dir/one", opts)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, o)
	o.Close()
	// 2. A parameter added after signing (a custom RoundTripper) breaks
	//    SigV4, which signs the query string: MinIO answers 403.
	broken, err := minio.New(e.caddy.S3Addr, &minio.Options{
		Creds:     credentials.NewStaticV4(e.user, e.pass, ""),
		Region:    "us-east-1",
		Transport: sentRequests.Transport(addQueryAfterSigning{"sessionid", "added-after-signing"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = broken.StatObject(ctx, bucket, "dir/one", minio.StatObjectOptions{})
	if err == nil {
		t.Fatal("a sessionid added after SigV4 signing was accepted; want 403 SignatureDoesNotMatch")
	}

	// Delete, and see it gone.
	if err := cl.RemoveObject(ctx, bucket, "dir/one", minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cl.StatObject(ctx, bucket, "dir/one", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatalf("head after delete: %v, want NoSuchKey", err)
	}

	// Now read back from the access log what happened, once every
	// request sent has its line (Caddy writes it after the response).
	es := e.caddy.waitLogged(t, from, sentRequests.IDsSince(mark), 10*time.Second)
	es = filter(es, func(x logEntry) bool { return strings.HasPrefix(x.Path(), "/"+bucket) })
	for _, x := range es {
		if x.Status == http.StatusForbidden && !strings.Contains(x.Request.URI, "added-after-signing") {
			t.Errorf("signature error through the proxy: %s %s -> 403", x.Request.Method, x.Request.URI)
		}
		if x.Upstream == "" {
			t.Errorf("access log entry without upstream: %s %s (status %d)", x.Request.Method, x.Request.URI, x.Status)
		}
	}
	isMultipart := func(x logEntry) bool {
		q := x.Query()
		_, a := q["uploads"]
		_, b := q["uploadId"]
		return a || b
	}

	// One client (one User-Agent): what names no object (bucket
	// operations, listings) is keyed by its fingerprint; the requests of
	// one object (PUT, HEAD, GET, DELETE) by the object (s3_object), so a
	// client's objects spread over the nodes while each object's requests
	// meet on one.
	// minio-go writes bucket requests as /bucket/ (trailing slash): an
	// object is what follows the bucket's slash.
	hasObject := func(x logEntry) bool {
		_, object, _ := strings.Cut(strings.TrimPrefix(x.Path(), "/"), "/")
		return object != ""
	}
	fp := filter(es, func(x logEntry) bool {
		return strings.Contains(x.UserAgent(), app) && !isMultipart(x) && !hasObject(x)
	})
	assertOneNode(t, e, "fingerprint session (minio-go, one User-Agent, bucket and listing requests)", fp, 2, "fingerprint")
	obj := filter(es, func(x logEntry) bool {
		return strings.Contains(x.UserAgent(), app) && !isMultipart(x) && x.Path() == "/"+bucket+"/dir/one"
	})
	assertOneNode(t, e, "one object's requests (PUT, HEAD, GET, DELETE, HEAD)", obj, 6, "s3_object")
	byID := filter(es, func(x logEntry) bool { return x.SessionID() == sess })
	assertOneNode(t, e, "sessionid session (presigned, sessionid signed in)", byID, 18, "query:sessionid")
	mpNo := filter(es, func(x logEntry) bool { return x.Path() == "/"+bucket+"/multi/nosession" && isMultipart(x) })
	assertOneNode(t, e, "multipart upload without sessionid (create, 4 parts, complete)", mpNo, 6, "")
	mpSess := filter(es, func(x logEntry) bool { return x.SessionID() == msess })
	assertOneNode(t, e, "multipart upload with sessionid (create, 3 parts, complete)", mpSess, 5, "query:sessionid")

	dropped := filter(es, func(x logEntry) bool {
		return strings.Contains(x.UserAgent(), app) && x.Request.Method == http.MethodGet && x.Path() == "/"+bucket+"/dir/one"
	})
	for _, x := range dropped {
		if x.SessionID() != "" {
			t.Errorf("minio-go sent sessionid %q from SetReqParam; the explanation in docs/session_affinity.md is wrong", x.SessionID())
		}
	}
	after := filter(es, func(x logEntry) bool { return strings.Contains(x.Request.URI, "added-after-signing") })
	if len(after) == 0 || after[0].Status != http.StatusForbidden {
		t.Errorf("the request with a parameter added after signing: %d log entries, want one 403", len(after))
	}
	e.rep.addf("S3/minio-go", "requests through caddy / signature errors", "%d / 0", len(es)-len(after))
	e.rep.addf("S3/minio-go", "multipart without sessionid: key source", "%s", sources(mpNo))
}

// assertOneNode checks that the entries (at least min of them) all reached
// one upstream and, if source is set, were keyed by that source.
func assertOneNode(t *testing.T, e *env, what string, es []logEntry, min int, source string) {
	t.Helper()
	if len(es) < min {
		t.Errorf("%s: %d requests in the access log, want at least %d", what, len(es), min)
		return
	}
	ups := upstreams(es)
	busy, split := splitByBusyNode(t, e, es, ups)
	if len(ups) != 1 && !split {
		t.Errorf("%s: requests reached %d nodes, want 1: %v", what, len(ups), ups)
	}
	if split {
		e.rep.addf("S3/minio-go", what, "split by design: %s was busy meanwhile", e.nodeOf(busy))
	}
	for _, x := range es {
		if source != "" && x.AffinitySource != source {
			t.Errorf("%s: %s %s keyed by %q, want %q", what, x.Request.Method, x.Request.URI, x.AffinitySource, source)
			break
		}
	}
	for up := range ups {
		e.rep.addf("S3/minio-go", what, "%d requests, all on %s", len(es), e.nodeOf(up))
	}
}

// splitByBusyNode reports whether requests of one key that reached two
// nodes did so by design: one of the two was busy meanwhile, and a busy
// node's keys go to their next node for about half of their requests
// (docs/healthready.md, Busy is not dead). Seen: MinIO refused the
// scenario's first PUT with 503 SlowDownWrite a moment after the cluster
// had taken a write through every node, and one object's requests and a
// session's were split between that node and the next.
func splitByBusyNode(t *testing.T, e *env, es []logEntry, ups map[string]int) (busy string, split bool) {
	t.Helper()
	if len(ups) != 2 || len(es) == 0 {
		return "", false
	}
	from, to := es[0].Start(), es[0].End()
	for _, x := range es {
		if x.Start().Before(from) {
			from = x.Start()
		}
		if x.End().After(to) {
			to = x.End()
		}
	}
	for up := range ups {
		if e.caddy.busyDuring(t, "s3", up, from, to) {
			return up, true
		}
	}
	return "", false
}

// sources lists the distinct affinity sources of the entries.
func sources(es []logEntry) string {
	seen := map[string]bool{}
	var out []string
	for _, x := range es {
		if !seen[x.AffinitySource] {
			seen[x.AffinitySource] = true
			out = append(out, x.AffinitySource)
		}
	}
	return strings.Join(out, ",")
}

func assertGetHash(t *testing.T, ctx context.Context, cl *minio.Client, bucket, obj string, want [32]byte) {
	t.Helper()
	o, err := cl.GetObject(ctx, bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", obj, err)
	}
	defer o.Close()
	h := sha256.New()
	n, err := io.Copy(h, o)
	if err != nil {
		t.Fatalf("get %s: %v", obj, err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatalf("get %s: %d bytes with another sha256 than uploaded", obj, n)
	}
}

// plainClient sends the test's plain HTTP requests (presigned URLs), tagged
// for the access log (sentRequests).
var plainClient = &http.Client{Timeout: time.Minute, Transport: sentRequests.Transport(http.DefaultTransport)}

// httpDo sends one request and fails the test unless the status is want.
func httpDo(t *testing.T, method, u string, body []byte, want int) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redact(u), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, redact(u), err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %.300s", method, redact(u), resp.StatusCode, want, b)
	}
	return b
}

// redact drops the signature from a presigned URL for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	if q.Has("X-Amz-Signature") {
		q.Set("X-Amz-Signature", "REDACTED")
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// presignedMultipart uploads body in parts of partSize with every call
// (create, parts, complete) presigned with sessionid=sess.
func presignedMultipart(t *testing.T, ctx context.Context, cl *minio.Client, bucket, obj, sess string, body []byte, partSize int) {
	t.Helper()
	q := url.Values{"sessionid": {sess}, "uploads": {""}}
	u, err := cl.Presign(ctx, http.MethodPost, bucket, obj, time.Hour, q)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal(httpDo(t, http.MethodPost, u.String(), []byte{}, http.StatusOK), &created); err != nil || created.UploadID == "" {
		t.Fatalf("create multipart: upload id %q, %v", created.UploadID, err)
	}
	type part struct {
		PartNumber int
		ETag       string
	}
	var parts []part
	for i, n := 0, 1; i < len(body); i, n = i+partSize, n+1 {
		pq := url.Values{"sessionid": {sess}, "uploadId": {created.UploadID}, "partNumber": {fmt.Sprint(n)}}
		pu, err := cl.Presign(ctx, http.MethodPut, bucket, obj, time.Hour, pq)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, pu.String(), bytes.NewReader(body[i:min(i+partSize, len(body))]))
		resp, err := plainClient.Do(req)
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: status %d: %s", n, resp.StatusCode, b)
		}
		parts = append(parts, part{n, resp.Header.Get("ETag")})
	}
	var x strings.Builder
	x.WriteString("<CompleteMultipartUpload>")
	for _, p := range parts {
		fmt.Fprintf(&x, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", p.PartNumber, p.ETag)
	}
	x.WriteString("</CompleteMultipartUpload>")
	cq := url.Values{"sessionid": {sess}, "uploadId": {created.UploadID}}
	cu, err := cl.Presign(ctx, http.MethodPost, bucket, obj, time.Hour, cq)
	if err != nil {
		t.Fatal(err)
	}
	res := httpDo(t, http.MethodPost, cu.String(), []byte(x.String()), http.StatusOK)
	if bytes.Contains(res, []byte("<Error>")) {
		t.Fatalf("complete multipart: %s", res)
	}
}

// addQueryAfterSigning is a RoundTripper that adds a query parameter to an
// already signed request, as a proxy-side or transport-side hack would.
type addQueryAfterSigning struct{ name, value string }

func (a addQueryAfterSigning) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	q := r.URL.Query()
	q.Set(a.name, a.value)
	r.URL.RawQuery = q.Encode()
	return http.DefaultTransport.RoundTrip(r)
}

// ownedAlready reports S3's answer to a CreateBucket that minio-go resent
// after a transient error (a 503 of a cluster that just started) when the
// first attempt had in fact created the bucket: the create succeeded.
func ownedAlready(err error) bool {
	return minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou"
}
