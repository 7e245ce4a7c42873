package s3listuploads

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is the initiation time of the first hand-made upload.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// mid builds a MinIO upload id: base64url("<deployment>.<uuid>x<unix nanos>").
func mid(n int, at time.Time) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "86efdead-5efc-456b-a890-e6037d1b415d.%08d-0000-0000-0000-000000000000x%d", n, at.UnixNano()))
}

// up is an upload as a MinIO node lists it; n numbers it, sec is its
// initiation in seconds after t0.
func up(key string, n int, sec float64) upload {
	at := t0.Add(time.Duration(sec * float64(time.Second)))
	return upload{Key: key, UploadID: mid(n, at), Initiated: at.Format("2006-01-02T15:04:05.000Z")}
}

// node is a node's answer to a bucket-wide listing: MinIO's own order
// (initiation), never truncated.
func node(ups ...upload) *listResult {
	sorted := append([]upload(nil), ups...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Initiated < sorted[j].Initiated })
	return &listResult{Bucket: "bkt", MaxUploads: 10000, Uploads: sorted}
}

func mustParams(t *testing.T, q string) params {
	t.Helper()
	p, err := parseParams(q)
	require.NoError(t, err)
	return p
}

// keys lists a page as "key" per upload and "key/" style prefixes as "P:<prefix>".
func keys(res *listResult) []string {
	var out []string
	for _, u := range res.Uploads {
		out = append(out, u.Key)
	}
	for _, cp := range res.CommonPrefixes {
		out = append(out, "P:"+cp.Prefix)
	}
	return out
}

// A 3-node cluster where each node created some uploads; "a/y" has two
// uploads on two nodes; node 3 also lists node 1's "b/x" (a duplicate).
func cluster() []*listResult {
	return []*listResult{
		node(up("b/x", 1, 0), up("c", 3, 2), up("a b+c~", 5, 4)),
		node(up("a/y", 2, 1), up("a/z", 4, 3), up("a/y", 6, 5)),
		node(up("d/e/f", 7, 6), up("b/x", 1, 0), up("a/", 8, 7)),
	}
}

func TestMergePages(t *testing.T) {
	tests := []struct {
		name      string
		query     string
		want      []string // uploads, then common prefixes as P:<prefix>
		truncated bool
		nextKey   string
		nextID    string // "" or the id of upload n as "#n"
	}{
		{"everything, deduplicated, by key then initiation", "uploads",
			[]string{"a b+c~", "a/", "a/y", "a/y", "a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"prefix", "uploads&prefix=a%2F", []string{"a/", "a/y", "a/y", "a/z"}, false, "", ""},
		{"prefix that is one key", "uploads&prefix=a%2Fy", []string{"a/y", "a/y"}, false, "", ""},
		{"prefix matching nothing", "uploads&prefix=zzz", nil, false, "", ""},
		{"delimiter groups keys into common prefixes", "uploads&delimiter=%2F",
			[]string{"a b+c~", "c", "P:a/", "P:b/", "P:d/"}, false, "", ""},
		{"prefix and delimiter", "uploads&prefix=d%2F&delimiter=%2F", []string{"P:d/e/"}, false, "", ""},
		{"multi-byte delimiter", "uploads&delimiter=e%2F", []string{"a b+c~", "a/", "a/y", "a/y", "a/z", "b/x", "c", "P:d/e/"}, false, "", ""},
		{"max-uploads truncates", "uploads&max-uploads=3", []string{"a b+c~", "a/", "a/y"}, true, "a/y", "#2"},
		{"max-uploads counts common prefixes", "uploads&delimiter=%2F&max-uploads=3",
			[]string{"a b+c~", "P:a/", "P:b/"}, true, "b/", ""},
		{"max-uploads equal to the count is not truncated", "uploads&max-uploads=8",
			[]string{"a b+c~", "a/", "a/y", "a/y", "a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"key-marker alone: keys after it", "uploads&key-marker=a%2Fy", []string{"a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"key-marker and upload-id-marker: the rest of that key too", "uploads&key-marker=a%2Fy&upload-id-marker=" + mid(2, t0.Add(time.Second)),
			[]string{"a/y", "a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"upload-id-marker of an upload gone since: placed by the time in its id",
			"uploads&key-marker=a%2Fy&upload-id-marker=" + mid(99, t0.Add(4*time.Second)),
			[]string{"a/y", "a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"upload-id-marker that is no MinIO id: greater ids (none)", "uploads&key-marker=a%2Fy&upload-id-marker=zzz",
			[]string{"a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"upload-id-marker that is no MinIO id: greater ids (both)", "uploads&key-marker=a%2Fy&upload-id-marker=N",
			[]string{"a/y", "a/y", "a/z", "b/x", "c", "d/e/f"}, false, "", ""},
		{"key-marker that is a common prefix skips its group", "uploads&delimiter=%2F&key-marker=a%2F", []string{"c", "P:b/", "P:d/"}, false, "", ""},
		{"max-uploads=0: empty, not truncated", "uploads&max-uploads=0", nil, false, "", ""},
	}
	ids := map[string]string{"#2": mid(2, t0.Add(time.Second))}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := merge(mustParams(t, tc.query), "bkt", cluster())
			require.NoError(t, err)
			assert.Equal(t, tc.want, keys(res))
			assert.Equal(t, tc.truncated, res.IsTruncated, "IsTruncated")
			assert.Equal(t, tc.nextKey, res.NextKeyMarker, "NextKeyMarker")
			assert.Equal(t, ids[tc.nextID], res.NextUploadIDMarker, "NextUploadIdMarker")
			assert.Equal(t, "bkt", res.Bucket)
		})
	}
}

// TestMergeEchoes: the request's parameters are echoed as S3 does
// (UploadIdMarker too, which MinIO leaves empty), max-uploads as asked.
func TestMergeEchoes(t *testing.T) {
	res, err := merge(mustParams(t, "uploads&prefix=a&delimiter=%2F&key-marker=ab&upload-id-marker=xyz&max-uploads=5000&encoding-type=url"), "bkt", cluster())
	require.NoError(t, err)
	assert.Equal(t, "a", res.Prefix)
	assert.Equal(t, "/", res.Delimiter)
	assert.Equal(t, "ab", res.KeyMarker)
	assert.Equal(t, "xyz", res.UploadIDMarker)
	assert.Equal(t, 5000, res.MaxUploads)
	assert.Equal(t, "url", res.EncodingType)

	res, err = merge(mustParams(t, "uploads"), "bkt", cluster())
	require.NoError(t, err)
	assert.Equal(t, 1000, res.MaxUploads, "S3's default")
}

// TestMergePaginationWalk: walking every page with every page size, with
// and without delimiter and prefix, lists every entry exactly once and in
// order, the same as one big page.
func TestMergePaginationWalk(t *testing.T) {
	var n1, n2, n3 []upload
	for i := 0; i < 60; i++ {
		u := up(fmt.Sprintf("dir%d/obj-%02d", i%4, i%7), i, float64(i)/3)
		switch i % 3 {
		case 0:
			n1 = append(n1, u)
		case 1:
			n2 = append(n2, u)
		default:
			n3 = append(n3, u)
		}
	}
	answers := []*listResult{node(n1...), node(n2...), node(n3...)}
	for _, base := range []string{"uploads", "uploads&delimiter=%2F", "uploads&prefix=dir1%2F", "uploads&prefix=dir&delimiter=1"} {
		full, err := merge(mustParams(t, base+"&max-uploads=1000"), "bkt", answers)
		require.NoError(t, err)
		require.False(t, full.IsTruncated)
		want := keysAndIDs(full)
		for size := 1; size <= 13; size++ {
			t.Run(fmt.Sprintf("%s/max-uploads=%d", base, size), func(t *testing.T) {
				var got []string
				q := fmt.Sprintf("%s&max-uploads=%d", base, size)
				for page := 0; page < 200; page++ {
					res, err := merge(mustParams(t, q), "bkt", answers)
					require.NoError(t, err)
					require.LessOrEqual(t, len(res.Uploads)+len(res.CommonPrefixes), size)
					got = append(got, keysAndIDs(res)...)
					if !res.IsTruncated {
						assert.Equal(t, want, got)
						return
					}
					require.NotEmpty(t, res.NextKeyMarker)
					q = fmt.Sprintf("%s&max-uploads=%d&key-marker=%s&upload-id-marker=%s", base, size,
						url.QueryEscape(res.NextKeyMarker), url.QueryEscape(res.NextUploadIDMarker))
				}
				t.Fatal("no last page after 200 pages")
			})
		}
	}
}

// keysAndIDs lists uploads as key#id and prefixes as P:prefix, in the
// order S3 interleaves them (by key).
func keysAndIDs(res *listResult) []string {
	type item struct{ key, s string }
	var items []item
	for _, u := range res.Uploads {
		items = append(items, item{u.Key, u.Key + "#" + u.UploadID})
	}
	for _, cp := range res.CommonPrefixes {
		items = append(items, item{cp.Prefix, "P:" + cp.Prefix})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.s
	}
	return out
}

// TestMergeDefaultPageIs1000: 1,500 uploads, no max-uploads: a page of
// 1,000, truncated; max-uploads above 1,000 still gives 1,000.
func TestMergeDefaultPageIs1000(t *testing.T) {
	var ups []upload
	for i := 0; i < 1500; i++ {
		ups = append(ups, up(fmt.Sprintf("k%05d", i), i, float64(i)))
	}
	for _, q := range []string{"uploads", "uploads&max-uploads=5000"} {
		res, err := merge(mustParams(t, q), "bkt", []*listResult{node(ups[:700]...), node(ups[700:]...)})
		require.NoError(t, err)
		assert.Len(t, res.Uploads, 1000, q)
		assert.True(t, res.IsTruncated, q)
		assert.Equal(t, "k00999", res.NextKeyMarker, q)
	}
}

// TestMergeURLEncoding: with encoding-type=url the nodes' names are
// decoded for ordering and filtering, and every name in the answer is
// encoded as MinIO encodes them.
func TestMergeURLEncoding(t *testing.T) {
	a := node(upload{Key: encodeName("a b+c~", true), UploadID: mid(1, t0), Initiated: "2026-11-30T12:00:00.000Z"})
	b := node(upload{Key: encodeName("a/ü x", true), UploadID: mid(2, t0), Initiated: "2026-11-30T12:00:00.000Z"})
	assert.Equal(t, "a+b%2Bc%7E", a.Uploads[0].Key, "MinIO's s3URLEncode, as seen on a real node")
	res, err := merge(mustParams(t, "uploads&encoding-type=url&prefix=a%2F%C3%BC&delimiter=+"), "bkt", []*listResult{a, b})
	require.NoError(t, err)
	assert.Empty(t, res.Uploads)
	assert.Equal(t, []commonPrefix{{Prefix: "a/%C3%BC+"}}, res.CommonPrefixes)
	assert.Equal(t, "a/%C3%BC", res.Prefix)
	assert.Equal(t, "+", res.Delimiter)

	res, err = merge(mustParams(t, "uploads&encoding-type=url&max-uploads=1"), "bkt", []*listResult{a, b})
	require.NoError(t, err)
	assert.Equal(t, []string{"a+b%2Bc%7E"}, keys(res))
	assert.Equal(t, "a+b%2Bc%7E", res.NextKeyMarker)

	// Without encoding-type the names pass as they are.
	raw := node(upload{Key: "a b+c~", UploadID: mid(1, t0)})
	res, err = merge(mustParams(t, "uploads"), "bkt", []*listResult{raw})
	require.NoError(t, err)
	assert.Equal(t, []string{"a b+c~"}, keys(res))

	_, err = merge(mustParams(t, "uploads&encoding-type=url"), "bkt", []*listResult{node(upload{Key: "bad%zz", UploadID: mid(1, t0)})})
	assert.ErrorContains(t, err, `upload key "bad%zz"`)
}

// TestMergeTruncatedNodes: MinIO pages a prefix listing itself (the uploads
// of one object, from disk, the same on every node). The merged page stops
// at the earliest last entry among the truncated answers and is truncated.
func TestMergeTruncatedNodes(t *testing.T) {
	all := []upload{up("obj", 1, 1), up("obj", 2, 2), up("obj", 3, 3)}
	page := func(ups ...upload) *listResult {
		return &listResult{Bucket: "bkt", Prefix: "obj", MaxUploads: 2, IsTruncated: true, Uploads: ups}
	}
	res, err := merge(mustParams(t, "uploads&prefix=obj&max-uploads=2"), "bkt", []*listResult{page(all[:2]...), page(all[:2]...), page(all[:2]...)})
	require.NoError(t, err)
	assert.Equal(t, []string{all[0].UploadID, all[1].UploadID}, ids(res), "deduplicated")
	assert.True(t, res.IsTruncated)
	assert.Equal(t, "obj", res.NextKeyMarker)
	assert.Equal(t, all[1].UploadID, res.NextUploadIDMarker)

	// One node is behind (it saw only the first upload yet): the page ends
	// where every truncated answer still vouches for the list.
	res, err = merge(mustParams(t, "uploads&prefix=obj&max-uploads=2"), "bkt", []*listResult{page(all[0], all[2]), page(all[:2]...)})
	require.NoError(t, err)
	assert.Equal(t, []string{all[0].UploadID, all[1].UploadID}, ids(res))
	assert.True(t, res.IsTruncated)

	// The last page: nobody truncated.
	last := &listResult{Bucket: "bkt", Prefix: "obj", Uploads: all[2:]}
	res, err = merge(mustParams(t, "uploads&prefix=obj&max-uploads=2&key-marker=obj&upload-id-marker="+all[1].UploadID), "bkt", []*listResult{last, last})
	require.NoError(t, err)
	assert.Equal(t, []string{all[2].UploadID}, ids(res))
	assert.False(t, res.IsTruncated)
	assert.Empty(t, res.NextKeyMarker)

	// A truncated answer with nothing in it cannot be continued from.
	_, err = merge(mustParams(t, "uploads"), "bkt", []*listResult{{Bucket: "bkt", IsTruncated: true}})
	assert.ErrorContains(t, err, "truncated, yet lists nothing")
}

func ids(res *listResult) []string {
	var out []string
	for _, u := range res.Uploads {
		out = append(out, u.UploadID)
	}
	return out
}

// minioAnswer is a real answer of a MinIO node (2026-02-12 build) to
// `GET /mpu?uploads&max-uploads=1000`, trimmed to two uploads.
const minioAnswer = `<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>mpu</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker><Prefix></Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated><Upload><Key>a b+c~</Key><UploadId>ODZlZmYxNDAtNWVmYy00NTZiLWE4OTAtZTYwMzdkMWI0MTVkLjY5OGEwZDU3LTdmOWYtNGQyYi1iMjUzLWYwMmUwNjNhNTkyY3gxNzk2MDY1MjIyNjgxMTgwOTI0</UploadId><Initiator><ID></ID><DisplayName></DisplayName></Initiator><Owner><ID></ID><DisplayName></DisplayName></Owner><StorageClass></StorageClass><Initiated>2026-11-30T19:00:22.748Z</Initiated></Upload><Upload><Key>b/x</Key><UploadId>ODZlZmYxNDAtNWVmYy00NTZiLWE4OTAtZTYwMzdkMWI0MTVkLmZlMzc2OGRkLTllNTUtNDgyNy04YjQ2LTBkOTUyMDA1ODAwNXgxNzk2MDY1MjIyNDI4OTMyOTQx</UploadId><Initiator><ID></ID><DisplayName></DisplayName></Initiator><Owner><ID></ID><DisplayName></DisplayName></Owner><StorageClass></StorageClass><Initiated>2026-11-30T19:00:22.473Z</Initiated></Upload></ListMultipartUploadsResult>`

// TestMergeKeepsMinIOBytes: one node's answer, merged with an empty one,
// comes out byte for byte as the node wrote it; so does the delimiter and
// encoding-type shape.
func TestMergeKeepsMinIOBytes(t *testing.T) {
	res, err := decodeResult([]byte(minioAnswer))
	require.NoError(t, err)
	empty, err := decodeResult([]byte(strings.Replace(minioAnswer[:strings.Index(minioAnswer, "<Upload>")], "", "", 1) + "</ListMultipartUploadsResult>"))
	require.NoError(t, err)
	merged, err := merge(mustParams(t, "uploads&max-uploads=1000"), res.Bucket, []*listResult{empty, res})
	require.NoError(t, err)
	out, err := encodeResult(merged)
	require.NoError(t, err)
	assert.Equal(t, minioAnswer, string(out))

	_, err = decodeResult([]byte(`<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>`))
	assert.ErrorContains(t, err, "root element is <Error>")
	_, err = decodeResult([]byte(`not xml`))
	assert.Error(t, err)
}

func TestParseParams(t *testing.T) {
	p := mustParams(t, "uploads&prefix=a%2Fb&delimiter=%2F&key-marker=k&upload-id-marker=u&max-uploads=7&encoding-type=URL&prefix=ignored")
	assert.Equal(t, params{prefix: "a/b", delimiter: "/", keyMarker: "k", uploadIDMarker: "u", encodingType: "URL", maxUploads: 7, urlEncoding: true}, p)
	for _, bad := range []string{"max-uploads=-1", "max-uploads=abc", "max-uploads=1.5"} {
		_, err := parseParams("uploads&" + bad)
		assert.ErrorContains(t, err, "max-uploads", bad)
	}
}

func TestInitiation(t *testing.T) {
	at := time.Date(2026, 11, 30, 19, 0, 22, 748118924, time.UTC)
	assert.Equal(t, at.UnixNano(), initiation(mid(1, at), "2026-11-30T19:00:22.999Z"), "the id's nanoseconds win")
	assert.Equal(t, time.Date(2026, 11, 30, 19, 0, 22, 999000000, time.UTC).UnixNano(), initiation("not-a-minio-id", "2026-11-30T19:00:22.999Z"))
	assert.Equal(t, int64(0), initiation("x", "garbage"))
	real := "ODZlZmYxNDAtNWVmYy00NTZiLWE4OTAtZTYwMzdkMWI0MTVkLjY5OGEwZDU3LTdmOWYtNGQyYi1iMjUzLWYwMmUwNjNhNTkyY3gxNzk2MDY1MjIyNjgxMTgwOTI0"
	ns, ok := idNanos(real)
	require.True(t, ok, "an id from a real node")
	assert.Equal(t, int64(1796065222681180924), ns)
}
