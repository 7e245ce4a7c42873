package s3op

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	domains := []string{".s3.example.com"}
	tests := []struct {
		method, host, target string
		want                 Op
	}{
		{"GET", "", "/b/o", GetObject},
		{"GET", "", "/b/dir/o.txt?versionId=3&partNumber=1", GetObject},
		{"GET", "", "/b/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab", GetObject},
		{"HEAD", "", "/b/o", HeadObject},
		{"PUT", "", "/b/o", PutObject},
		{"DELETE", "", "/b/o?versionId=1", DeleteObject},
		{"POST", "", "/b/o?uploads", CreateMultipart},
		{"POST", "", "/b/o?uploads=", CreateMultipart},
		{"PUT", "", "/b/o?partNumber=2&uploadId=abc", UploadPart},
		{"POST", "", "/b/o?uploadId=abc", CompleteMultipart},
		{"DELETE", "", "/b/o?uploadId=abc", AbortMultipart},
		{"GET", "", "/b/o?uploadId=abc&max-parts=10", ListParts},
		{"GET", "", "/b?uploads", ListUploads},
		{"GET", "", "/b/?uploads&prefix=x", ListUploads},
		{"GET", "", "/b", ListObjects},
		{"GET", "", "/b/", ListObjects},
		{"GET", "", "/b?list-type=2&prefix=a%2F&delimiter=%2F&max-keys=10", ListObjects},
		{"GET", "", "/b?versions&prefix=a", ListObjects},
		{"GET", "", "/b?location", BucketOp},
		{"GET", "", "/b?policy", BucketOp},
		{"PUT", "", "/b", BucketOp},
		{"HEAD", "", "/b", BucketOp},
		{"DELETE", "", "/b", BucketOp},
		{"POST", "", "/b?delete", DeleteObjects},
		{"GET", "", "/", ListBuckets},
		{"GET", "", "/b/o?tagging", Other},
		{"PUT", "", "/b/o?acl", Other},
		{"POST", "", "/b/o?select&select-type=2", Other},
		{"GET", "", "/minio/health/ready", MinIO},
		{"GET", "", "/minio/admin/v3/info", MinIO},
		{"OPTIONS", "", "/b/o", Other},
		// virtual-host style: the Host names the bucket
		{"GET", "b.s3.example.com", "/o", GetObject},
		{"GET", "b.s3.example.com:9000", "/", ListObjects},
		{"GET", "B.S3.EXAMPLE.COM", "/dir/o", GetObject},
		{"GET", "s3.example.com", "/b/o", GetObject}, // the bare domain is path style
		{"GET", "other.host", "/o", ListObjects},     // not a configured domain: path style bucket "o"
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+tt.target, func(t *testing.T) {
			path, query, _ := cut(tt.target)
			assert.Equal(t, tt.want.String(), Classify(tt.method, tt.host, path, query, domains).String())
		})
	}
}

func cut(target string) (string, string, bool) {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			return target[:i], target[i+1:], true
		}
	}
	return target, "", false
}

func TestLabelsAreUniqueAndStable(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range All() {
		s := o.String()
		assert.NotEmpty(t, s)
		assert.False(t, seen[s], "duplicate label %s", s)
		seen[s] = true
	}
	assert.Len(t, seen, Count)
	assert.Equal(t, "other", Op(200).String())
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	r, _ := http.NewRequest("PUT", "http://x/bucket/some/key.bin?partNumber=3&uploadId=abcdef&X-Amz-Signature=1", nil)
	allocs := testing.AllocsPerRun(1000, func() {
		_ = Classify(r.Method, r.Host, r.URL.Path, r.URL.RawQuery, nil)
	})
	assert.Zero(t, allocs)
}

// BenchmarkClassify is the cost of labelling one request (per-node metrics,
// status page, access log).
func BenchmarkClassify(b *testing.B) {
	cases := []struct{ name, method, target string }{
		{"get_object", "GET", "/bucket/dir/object.bin"},
		{"presigned_get", "GET", "/bucket/object?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=minio%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"upload_part", "PUT", "/bucket/object?partNumber=12&uploadId=0b2e8c1d-7c7e-4f55-a5b4-0a5c6a0d9a11"},
		{"list_objects_v2", "GET", "/bucket?list-type=2&prefix=logs%2F&delimiter=%2F&max-keys=1000"},
	}
	for _, c := range cases {
		path, q, _ := cut(c.target)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Classify(c.method, "", path, q, nil)
			}
		})
	}
}
