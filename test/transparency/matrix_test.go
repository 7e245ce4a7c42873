package transparency

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func crc32Base64(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func md5Base64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// minioClient is a minio-go client of target t with the root credentials.
func minioClient(tb testing.TB, t target, opts ...func(*minio.Options)) *minio.Client {
	tb.Helper()
	o := &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Region: region}
	for _, f := range opts {
		f(o)
	}
	c, err := minio.New(t.Addr, o)
	require.NoError(tb, err)
	return c
}

// sha256Hasher is the md5simd.Hasher minio-go's streaming signer wants.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// rawOp is one request of the matrix, built fresh for each target because
// the signature covers the target's host:port.
type rawOp struct {
	name   string
	status int // what MinIO answers direct; checked so a broken op cannot pass
	build  func(t target) rawRequest
}

// rawOps is the matrix of S3 requests sent with a raw HTTP/1.1 client.
func rawOps(tb testing.TB, e *env) []rawOp {
	b := "/" + e.Bucket
	small := payload(64<<10, 1)
	chunked := payload(150<<10, 2) // > 64 KiB: several aws-chunked chunks
	signed := func(method, path string, body []byte, hdr map[string]string) func(t target) rawRequest {
		return func(t target) rawRequest {
			req := newRequest(t, method, path, body)
			for k, v := range hdr {
				req.Header[k] = []string{v} // exact case, as an SDK sends it
			}
			return rawRequest{Request: signV4(req, body, accessKey, secretKey)}
		}
	}
	get := func(path string, hdr map[string]string) func(t target) rawRequest {
		return signed(http.MethodGet, path, nil, hdr)
	}
	// The object every read op looks at, written before the matrix runs.
	obj := b + "/read/Mixed%20Key.bin"
	put, err := do(signed(http.MethodPut, obj, small, map[string]string{
		"x-amz-meta-MixedCase": "Value One", "x-amz-meta-lower": "v2",
		"Content-Type": "application/x-test", "x-amz-checksum-crc32": crc32Base64(small),
	})(e.Direct))
	require.NoError(tb, err)
	require.Equal(tb, 200, put.Status, "setup put: %s", put.Body)
	etag := put.Header.Get("ETag")
	past := time.Now().Add(-48 * time.Hour).UTC().Format(http.TimeFormat)
	future := time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat)

	return []rawOp{
		{"PutObject user metadata + Content-MD5", 200, signed(http.MethodPut, b+"/w/md5", small, map[string]string{
			"x-amz-meta-MixedCase": "Value", "Content-MD5": md5Base64(small)})},
		{"PutObject wrong Content-MD5 (BadDigest)", 400, signed(http.MethodPut, b+"/w/bad-md5", small, map[string]string{
			"Content-MD5": md5Base64([]byte("other"))})},
		{"PutObject x-amz-checksum-crc32", 200, signed(http.MethodPut, b+"/w/crc", small, map[string]string{
			"x-amz-checksum-crc32": crc32Base64(small), "x-amz-sdk-checksum-algorithm": "CRC32"})},
		{"PutObject wrong x-amz-checksum-crc32", 400, signed(http.MethodPut, b+"/w/bad-crc", small, map[string]string{
			"x-amz-checksum-crc32": crc32Base64([]byte("other"))})},
		{"PutObject Expect: 100-continue", 200, func(t target) rawRequest {
			r := signed(http.MethodPut, b+"/w/continue", small, nil)(t)
			r.ExpectContinue = true
			return r
		}},
		{"PutObject aws-chunked STREAMING-AWS4-HMAC-SHA256-PAYLOAD", 200, func(t target) rawRequest {
			req := newRequest(t, http.MethodPut, b+"/w/streaming", chunked)
			req.Header.Set("x-amz-meta-MixedCase", "streamed")
			return rawRequest{Request: signer.StreamingSignV4(req, accessKey, secretKey, "", region,
				int64(len(chunked)), time.Now().UTC(), sha256Hasher{sha256.New()})}
		}},
		{"PutObject STREAMING-UNSIGNED-PAYLOAD-TRAILER + x-amz-checksum-crc32 trailer", 200, func(t target) rawRequest {
			req := newRequest(t, http.MethodPut, b+"/w/trailer", chunked)
			req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
			trailer := http.Header{"x-amz-checksum-crc32": {crc32Base64(chunked)}}
			return rawRequest{Request: signer.SignV4Trailer(*req, accessKey, secretKey, "", region, trailer)}
		}},
		{"PutObject trailer with wrong crc32", 400, func(t target) rawRequest {
			req := newRequest(t, http.MethodPut, b+"/w/bad-trailer", chunked)
			req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			trailer := http.Header{"x-amz-checksum-crc32": {crc32Base64([]byte("other"))}}
			return rawRequest{Request: signer.SignV4Trailer(*req, accessKey, secretKey, "", region, trailer)}
		}},
		{"HeadObject (mixed-case user metadata)", 200, signed(http.MethodHead, obj, nil, nil)},
		{"GetObject", 200, get(obj, nil)},
		{"GetObject x-amz-checksum-mode ENABLED", 200, get(obj, map[string]string{"x-amz-checksum-mode": "ENABLED"})},
		{"GetObject Range bytes=100-199", 206, get(obj, map[string]string{"Range": "bytes=100-199"})},
		{"GetObject Range bytes=-10", 206, get(obj, map[string]string{"Range": "bytes=-10"})},
		{"GetObject Range beyond the end (InvalidRange)", 416, get(obj, map[string]string{"Range": "bytes=999999-"})},
		{"GetObject If-None-Match current ETag", 304, get(obj, map[string]string{"If-None-Match": etag})},
		{"GetObject If-Match other ETag", 412, get(obj, map[string]string{"If-Match": `"0123456789abcdef0123456789abcdef"`})},
		{"GetObject If-Modified-Since future", 304, get(obj, map[string]string{"If-Modified-Since": future})},
		{"GetObject If-Unmodified-Since past", 412, get(obj, map[string]string{"If-Unmodified-Since": past})},
		{"GetObject response-content-type override", 200, get(obj+"?response-content-type=text%2Fplain&response-cache-control=no-store", nil)},
		{"ListObjectsV2", 200, get(b+"?list-type=2&prefix=read%2F", nil)},
		{"HeadBucket", 200, signed(http.MethodHead, b, nil, nil)},
		{"GetBucketLocation", 200, get(b+"?location=", nil)},
		{"NoSuchKey", 404, get(b+"/no/such/key", nil)},
		{"NoSuchBucket", 404, get("/no-such-bucket-here/key", nil)},
		{"InvalidAccessKeyId", 403, func(t target) rawRequest {
			return rawRequest{Request: signV4(newRequest(t, http.MethodGet, obj, nil), nil, "NOSUCHUSER", secretKey)}
		}},
		{"SignatureDoesNotMatch", 403, func(t target) rawRequest {
			return rawRequest{Request: signV4(newRequest(t, http.MethodGet, obj, nil), nil, accessKey, "wrong-secret-key")}
		}},
		{"AccessDenied (anonymous GET of a private object)", 403, func(t target) rawRequest {
			return rawRequest{Request: newRequest(t, http.MethodGet, obj, nil)}
		}},
		{"Presigned GET (SigV4 query)", 200, func(t target) rawRequest {
			return rawRequest{Request: signer.PreSignV4(*newRequest(t, http.MethodGet, obj, nil), accessKey, secretKey, "", region, 600)}
		}},
		{"Presigned PUT (SigV4 query)", 200, func(t target) rawRequest {
			req := signer.PreSignV4(*newRequest(t, http.MethodPut, b+"/w/presigned", nil), accessKey, secretKey, "", region, 600)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(small)), int64(len(small))
			return rawRequest{Request: req}
		}},
		{"Presigned GET, expired", 403, func(t target) rawRequest {
			// The shortest expiry is 1 s: sign, then let it lapse.
			req := signer.PreSignV4(*newRequest(t, http.MethodGet, obj, nil), accessKey, secretKey, "", region, 1)
			time.Sleep(1100 * time.Millisecond)
			return rawRequest{Request: req}
		}},
		{"GetObject SigV2 (Authorization: AWS)", 200, func(t target) rawRequest {
			req := newRequest(t, http.MethodGet, obj, nil)
			req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
			return rawRequest{Request: signer.SignV2(*req, accessKey, secretKey, false)}
		}},
		{"PutObject SigV2", 200, func(t target) rawRequest {
			req := newRequest(t, http.MethodPut, b+"/w/sigv2", small)
			req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
			req.Header.Set("x-amz-meta-MixedCase", "v2")
			return rawRequest{Request: signer.SignV2(*req, accessKey, secretKey, false)}
		}},
		{"Presigned GET SigV2", 200, func(t target) rawRequest {
			return rawRequest{Request: signer.PreSignV2(*newRequest(t, http.MethodGet, obj, nil), accessKey, secretKey, 600, false)}
		}},
		{"Browser form POST with policy (201)", 201, func(t target) rawRequest {
			return formPost(tb, t, e.Bucket, "w/form-upload", small)
		}},
		{"DeleteObject", 204, signed(http.MethodDelete, b+"/w/to-delete", nil, nil)},
	}
}

// toleratedDiffs are differences of our proxy that no S3 client can see:
// MinIO writes "ETag" (not Go's canonical "Etag"), every Go proxy writes
// "Etag", and HTTP header names are case-insensitive; botocore, the AWS SDKs,
// minio-go, rclone and browsers all look ETag up case-insensitively. Unlike
// x-amz-meta-* names, the name is not data. Reported, not failed.
var toleratedDiffs = map[string]bool{
	"header name `ETag` became `Etag`": true,
}

func withoutTolerated(d []string) []string {
	var out []string
	for _, x := range d {
		if !toleratedDiffs[x] {
			out = append(out, x)
		}
	}
	return out
}

// formPost builds the multipart/form-data POST a browser sends for a
// presigned POST policy made by minio-go's PresignedPostPolicy.
func formPost(tb testing.TB, t target, bucket, key string, body []byte) rawRequest {
	p := minio.NewPostPolicy()
	require.NoError(tb, p.SetBucket(bucket))
	require.NoError(tb, p.SetKey(key))
	require.NoError(tb, p.SetExpires(time.Now().Add(10*time.Minute)))
	require.NoError(tb, p.SetContentType("image/png"))
	require.NoError(tb, p.SetSuccessStatusAction("201"))
	require.NoError(tb, p.SetUserMetadata("MixedCase", "form"))
	u, form, err := minioClient(tb, t).PresignedPostPolicy(tb.Context(), p)
	require.NoError(tb, err)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("transparency-form-boundary")
	for _, k := range sortedKeys(form) {
		require.NoError(tb, mw.WriteField(k, form[k]))
	}
	fw, err := mw.CreateFormFile("file", "upload.png")
	require.NoError(tb, err)
	_, _ = fw.Write(body)
	require.NoError(tb, mw.Close())
	req, err := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(buf.Bytes()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return rawRequest{Request: req}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// matrixResult is one row of the report: op -> target -> differences.
type matrixResult struct {
	Op    string
	Diffs map[string][]string // by target name; empty: identical to direct
}

// testRawMatrix sends every op direct and through both proxies and checks
// that ours answers exactly like MinIO. It returns the rows for the report.
func testRawMatrix(t *testing.T, e *env) []matrixResult {
	var rows []matrixResult
	for _, op := range rawOps(t, e) {
		row := matrixResult{Op: op.name, Diffs: map[string][]string{}}
		t.Run(op.name, func(t *testing.T) {
			var ref observation
			var refCont time.Duration
			var ref100 bool
			for _, tg := range e.targets() {
				r, err := do(op.build(tg))
				require.NoError(t, err, tg.Name)
				o := observe(tg, r)
				if tg.Pid == 0 {
					require.Equal(t, op.status, r.Status, "direct answer of %q: %s", op.name, r.Body)
					ref, refCont, ref100 = o, r.Continue, r.Got100
					continue
				}
				d := diff(ref, o)
				d = append(d, proxyAdded(r)...)
				if r.Got100 != ref100 {
					d = append(d, fmt.Sprintf("100 Continue received: %v, direct %v", r.Got100, ref100))
				}
				if r.Continue > 0 && r.Continue-refCont >= time.Second {
					d = append(d, fmt.Sprintf("100-continue stall: %v, direct %v", r.Continue, refCont))
				}
				row.Diffs[tg.Name] = d
				if tg == e.Ours {
					assert.Empty(t, withoutTolerated(d), "through our proxy %q differs from direct", op.name)
				}
			}
		})
		rows = append(rows, row)
	}
	return rows
}
