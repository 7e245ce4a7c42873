// Package s3op tells which S3 operation a request is, from its method, host,
// path and raw query, without parsing the query into a map and without
// allocating. Per-node metrics, the status page and the access log label
// requests with it; the labels are a small fixed set (no bucket or object
// names), so metric cardinality stays bounded.
package s3op

import "strings"

// Op is an S3 operation class.
type Op uint8

// The operation classes. Their String values are metric label values and
// part of the documented interface; add new ones at the end.
const (
	Other             Op = iota // anything not listed below (object tagging, ACLs, select, ...)
	GetObject                   // GET of an object (also ranged, versioned, presigned)
	HeadObject                  // HEAD of an object
	PutObject                   // PUT of an object (also CopyObject)
	DeleteObject                // DELETE of an object
	CreateMultipart             // POST /bucket/object?uploads
	UploadPart                  // PUT /bucket/object?partNumber=N&uploadId=ID (also UploadPartCopy)
	CompleteMultipart           // POST /bucket/object?uploadId=ID
	AbortMultipart              // DELETE /bucket/object?uploadId=ID
	ListParts                   // GET /bucket/object?uploadId=ID
	ListUploads                 // GET /bucket?uploads (ListMultipartUploads)
	ListObjects                 // GET /bucket (V1 and V2, also ?versions)
	DeleteObjects               // POST /bucket?delete (multi-object delete)
	BucketOp                    // any other request on a bucket (create, delete, HEAD, location, policy, ...)
	ListBuckets                 // GET /
	MinIO                       // MinIO's own endpoints under /minio/ (health, admin, metrics)
	numOps
)

// Count is the number of operation classes (for arrays indexed by Op).
const Count = int(numOps)

var names = [numOps]string{
	Other: "other", GetObject: "get_object", HeadObject: "head_object", PutObject: "put_object",
	DeleteObject: "delete_object", CreateMultipart: "create_multipart", UploadPart: "upload_part",
	CompleteMultipart: "complete_multipart", AbortMultipart: "abort_multipart", ListParts: "list_parts",
	ListUploads: "list_uploads", ListObjects: "list_objects", DeleteObjects: "delete_objects",
	BucketOp: "bucket", ListBuckets: "list_buckets", MinIO: "minio",
}

// String is the class's label value, e.g. "get_object".
func (o Op) String() string {
	if o < numOps {
		return names[o]
	}
	return names[Other]
}

// All lists every class in order (for documentation and metric setup).
func All() []Op {
	out := make([]Op, numOps)
	for i := range out {
		out[i] = Op(i)
	}
	return out
}

// Classify returns the operation class of an S3 request. host is the
// request's Host header and domains the S3 endpoint domains of
// virtual-host-style requests ("<bucket>.<domain>"), both may be empty
// (path-style only). path is the URL path as received (escaped or not does
// not matter: only '/' positions are read), rawQuery the raw query.
func Classify(method, host, path, rawQuery string, domains []string) Op {
	if strings.HasPrefix(path, "/minio/") {
		return MinIO
	}
	bucket, object := split(host, path, domains)
	if bucket == "" {
		if method == "GET" {
			return ListBuckets
		}
		return Other
	}
	if object == "" {
		return classifyBucket(method, rawQuery)
	}
	return classifyObject(method, rawQuery)
}

func classifyBucket(method, q string) Op {
	f := scanQuery(q)
	switch method {
	case "GET":
		if f&hasUploads != 0 {
			return ListUploads
		}
		if f&hasOtherKey == 0 {
			return ListObjects
		}
	case "POST":
		if f&hasDelete != 0 {
			return DeleteObjects
		}
	}
	return BucketOp
}

func classifyObject(method, q string) Op {
	f := scanQuery(q)
	uploadID := f&hasUploadID != 0
	switch {
	case method == "POST" && f&hasUploads != 0:
		return CreateMultipart
	case uploadID && method == "PUT":
		return UploadPart
	case uploadID && method == "POST":
		return CompleteMultipart
	case uploadID && method == "DELETE":
		return AbortMultipart
	case uploadID && method == "GET":
		return ListParts
	case f&hasSubresource != 0:
		return Other
	}
	switch method {
	case "GET":
		return GetObject
	case "HEAD":
		return HeadObject
	case "PUT":
		return PutObject
	case "DELETE":
		return DeleteObject
	}
	return Other
}

// queryFlags say which kinds of parameters a raw query carries.
type queryFlags uint8

const (
	hasUploads     queryFlags = 1 << iota // uploads
	hasUploadID                           // uploadId
	hasDelete                             // delete
	hasSubresource                        // an object subresource: tagging, acl, ...
	hasOtherKey                           // a key that is not a listing, read or signing parameter
)

// scanQuery reads every parameter name of the raw query q once. Names are
// compared as sent: S3 clients do not escape these names.
func scanQuery(q string) queryFlags {
	var f queryFlags
	for q != "" {
		var k string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			k, q = q[:i], q[i+1:]
		} else {
			k, q = q, ""
		}
		if i := strings.IndexByte(k, '='); i >= 0 {
			k = k[:i]
		}
		switch k {
		case "":
		case "uploads":
			f |= hasUploads | hasOtherKey
		case "uploadId":
			f |= hasUploadID | hasOtherKey
		case "delete":
			f |= hasDelete | hasOtherKey
		// object subresources: such a request is not a plain object read
		// or write
		case "tagging", "acl", "retention", "legal-hold", "attributes", "select", "select-type",
			"restore", "torrent", "lambdaArn":
			f |= hasSubresource | hasOtherKey
		// parameters of ListObjects (V1, V2, versions), of object reads and
		// of presigned requests: a GET on a bucket with only these is a
		// listing; any other key (location, policy, ...) makes it a bucket
		// operation
		case "list-type", "versions", "prefix", "delimiter", "marker", "max-keys", "encoding-type",
			"continuation-token", "fetch-owner", "start-after", "key-marker", "version-id-marker",
			"metadata", "allow-unordered", "versionId", "partNumber", "x-id",
			"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
			"X-Amz-Signature", "X-Amz-Security-Token":
		default:
			if !strings.HasPrefix(k, "response-") {
				f |= hasOtherKey
			}
		}
	}
	return f
}

// HasKey reports whether the raw query carries a parameter named exactly
// key (with or without a value), as S3 sends `uploads` and `uploadId`.
func HasKey(raw, key string) bool {
	for raw != "" {
		var kv string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			kv, raw = raw[:i], raw[i+1:]
		} else {
			kv, raw = raw, ""
		}
		if len(kv) >= len(key) && kv[:len(key)] == key && (len(kv) == len(key) || kv[len(key)] == '=') {
			return true
		}
	}
	return false
}

// split returns the bucket and the object key part of a request (both
// without slashes around them; object may contain slashes). A virtual-host
// style Host names the bucket, then the whole path is the object.
func split(host, path string, domains []string) (bucket, object string) {
	if b := VHostBucket(host, domains); b != "" {
		return b, strings.TrimPrefix(path, "/")
	}
	p := strings.TrimPrefix(path, "/")
	i := strings.IndexByte(p, '/')
	if i < 0 {
		return p, ""
	}
	return p[:i], p[i+1:]
}

// BucketObject returns the bucket and object of a request as split does; an
// object is "" for bucket-level and service-level requests.
func BucketObject(host, path string, domains []string) (bucket, object string) {
	return split(host, path, domains)
}

// VHostBucket returns the bucket of a virtual-host style request: the part
// of the Host (port dropped) before ".<domain>" for a configured domain.
// domains are given with a leading dot and in lower case (".s3.example.com").
func VHostBucket(host string, domains []string) string {
	if len(domains) == 0 || host == "" {
		return ""
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	for _, d := range domains {
		if len(host) > len(d) && strings.EqualFold(host[len(host)-len(d):], d) {
			return host[:len(host)-len(d)]
		}
	}
	return ""
}
