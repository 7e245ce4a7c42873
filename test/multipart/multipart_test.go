package multipart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKeys are the objects of the uploads: nested prefixes, names that
// need url encoding, and keys with two uploads (every third).
func testKeys() []string {
	keys := []string{"a/1", "a/2", "a/b/3", "a b+c~", "b/x", "b/y/z", "c", "dir/sub/1", "dir/sub/2", "dir/ü-ñ", "e%f", "z"}
	for i := 0; i < 28; i++ {
		keys = append(keys, fmt.Sprintf("many/k%02d", i))
	}
	sort.Strings(keys)
	return keys
}

// uploadsPerKey: every third key has two uploads.
func uploadsPerKey(i int) int { return 1 + boolInt(i%3 == 0) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestListMultipartUploads runs the scenarios on one cluster and one Caddy
// (examples/Caddyfile); NodeDown comes last, it restarts a node.
func TestListMultipartUploads(t *testing.T) {
	e := startEnv(t)
	ctx := ctxT(t, 8*time.Minute)
	keys := testKeys()

	// Reference: the same keys, created through node 1 alone, in key
	// order (so MinIO's own order, by initiation, is S3's order too).
	n1 := e.core(t, e.c.Node(0).S3Addr(), "reference")
	require.NoError(t, n1.MakeBucket(ctx, "reference", minio.MakeBucketOptions{}))
	for i, k := range keys {
		for j := 0; j < uploadsPerKey(i); j++ {
			_, err := n1.NewMultipartUpload(ctx, "reference", k, minio.PutObjectOptions{})
			require.NoError(t, err)
		}
	}

	// Through the proxy: 8 clients (8 User-Agents: 8 fingerprints), the
	// keys dealt round robin; s3_multipart keys each create on its object.
	require.NoError(t, e.core(t, e.proxy, "setup").MakeBucket(ctx, "spread", minio.MakeBucketOptions{}))
	created := map[string]string{} // upload id -> key
	for i, k := range keys {
		for j := 0; j < uploadsPerKey(i); j++ {
			cl := e.core(t, e.proxy, fmt.Sprintf("client-%d", (i+j)%8))
			id, err := cl.NewMultipartUpload(ctx, "spread", k, minio.PutObjectOptions{})
			require.NoError(t, err, "create %s", k)
			created[id] = k
		}
	}
	ids := make([]string, 0, len(created))
	for id := range created {
		ids = append(ids, id)
	}
	ids = sortedCopy(ids)

	t.Run("CompleteAcrossNodes", func(t *testing.T) { testComplete(t, e, ids) })
	t.Run("PagingAgainstReference", func(t *testing.T) { testPaging(t, e, keys) })
	t.Run("ObjectPrefixPagedByMinIO", func(t *testing.T) { testObjectPrefix(t, e, keys) })
	t.Run("S3TestsListMultipartUpload", func(t *testing.T) { testS3Tests(t, e) })
	t.Run("NodeDown", func(t *testing.T) { testNodeDown(t, e, ids) })
}

// testComplete: the creates reached every node (access log), each node
// alone lists only its own, the proxy lists them all, minio-go too.
func testComplete(t *testing.T, e *env, ids []string) {
	ctx := ctxT(t, time.Minute)
	var creates []caddyproc.AccessEntry
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) { // Caddy logs a line after its response
		es, err := e.caddy.AccessLog()
		require.NoError(t, err)
		creates = creates[:0]
		for _, x := range es {
			if x.Request.Method == http.MethodPost && strings.HasPrefix(x.Request.URI, "/spread/") && strings.Contains(x.Request.URI, "?uploads") {
				creates = append(creates, x)
			}
		}
		if len(creates) >= len(ids) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Len(t, creates, len(ids), "one access log line per create")
	perNode := map[string]int{}
	for _, x := range creates {
		require.Equal(t, http.StatusOK, x.Status)
		perNode[nodeName(e.c, x.String("upstream"))]++
	}
	t.Logf("uploads created through the proxy, per node (access log `upstream`): %v", perNode)
	require.Len(t, perNode, 4, "the creates reached every node: %v", perNode)

	// Each node alone: only the uploads created through it.
	union := map[string]bool{}
	for i, addr := range e.c.S3Addrs() {
		got := uploadsOf(e.walk(t, addr, "spread", "uploads", 0))
		assert.Len(t, got, perNode[fmt.Sprintf("node%d", i+1)], "node%d direct", i+1)
		assert.Less(t, len(got), len(ids), "node%d direct lists less than all", i+1)
		for _, id := range got {
			union[id] = true
		}
	}
	assert.Len(t, union, len(ids), "the nodes' own lists add up to all uploads")

	// Through the proxy: every upload, one listing (default page, 1000).
	r := decode(t, e.rawList(t, e.proxy, "spread", "uploads"))
	var got []string
	for _, u := range r.Uploads {
		got = append(got, u.UploadID)
	}
	assert.Equal(t, ids, sortedCopy(got), "the proxy lists every upload")
	assert.False(t, r.IsTruncated)
	assert.Equal(t, 1000, r.MaxUploads, "S3's default page")

	// minio-go (encoding-type=url, its own decoding) through the proxy.
	res, err := e.core(t, e.proxy, "sdk").ListMultipartUploads(ctx, "spread", "", "", "", "", 1000)
	require.NoError(t, err)
	got = got[:0]
	for _, u := range res.Uploads {
		got = append(got, u.UploadID)
	}
	assert.Equal(t, ids, sortedCopy(got), "minio-go lists every upload through the proxy")
}

// testPaging walks every paging parameter through the proxy on bucket
// "reference" (all its uploads made through node 1) and checks each page against
// the pages S3 defines, computed from node 1's own full listing; the same
// walks on bucket "spread" (uploads spread over the nodes) give the same keys
// in the same pages. Without parameters the proxy answers node 1's bytes.
func testPaging(t *testing.T, e *env, keys []string) {
	node1 := e.c.Node(0).S3Addr()

	// Byte for byte: the proxy's answer for "reference" is node 1's answer.
	for _, q := range []string{"uploads&max-uploads=1000", "uploads&max-uploads=1000&encoding-type=url"} {
		direct := e.rawList(t, node1, "reference", q)
		via := e.rawList(t, e.proxy, "reference", q)
		require.Equal(t, http.StatusOK, via.status, "%s", via.body)
		assert.Equal(t, string(direct.body), string(via.body), "%s: proxy body == node 1's body", q)
		for name := range direct.header {
			if name != "Transfer-Encoding" {
				assert.Contains(t, via.header, name, "%s: header %s of the direct answer", q, name)
			}
		}
		for name := range via.header {
			if name != "Content-Length" {
				assert.Contains(t, direct.header, name, "%s: header %s is not MinIO's", q, name)
			}
		}
	}

	// The reference: node 1's full list of "reference", in S3 order.
	refList := decode(t, e.rawList(t, node1, "reference", "uploads&max-uploads=1000"))
	var ref []refUpload
	for _, u := range refList.Uploads {
		ref = append(ref, refUpload{key: u.Key, id: u.UploadID})
	}
	sort.SliceStable(ref, func(i, j int) bool { return ref[i].key < ref[j].key })
	total := 0
	for i := range keys {
		total += uploadsPerKey(i)
	}
	require.Len(t, ref, total)

	dupKey := keys[0] // two uploads
	cases := []struct {
		name, query string
	}{
		{"all", "uploads"},
		{"prefix naming an object with two uploads", "uploads&prefix=" + url.QueryEscape(dupKey)},
		{"prefix naming no object (MinIO: none)", "uploads&prefix=many%2Fk1"},
		{"delimiter", "uploads&delimiter=%2F"},
		{"prefix naming an object, delimiter", "uploads&prefix=" + url.QueryEscape(dupKey) + "&delimiter=%2F"},
		{"prefix naming no object, delimiter (MinIO: none)", "uploads&prefix=dir%2F&delimiter=%2F"},
		{"key-marker", "uploads&key-marker=" + url.QueryEscape("b/x")},
		{"key-marker and upload-id-marker", "uploads&key-marker=" + url.QueryEscape(dupKey) + "&upload-id-marker=" + url.QueryEscape(firstID(ref, dupKey))},
		{"key-marker that is a common prefix", "uploads&delimiter=%2F&key-marker=a%2F"},
		{"encoding-type=url", "uploads&encoding-type=url"},
		{"encoding-type=url, delimiter", "uploads&encoding-type=url&delimiter=%2F"},
	}
	for _, tc := range cases {
		for _, size := range []int{1, 3, 7, 0} {
			t.Run(fmt.Sprintf("%s/max-uploads=%d", tc.name, size), func(t *testing.T) {
				q := tc.query
				want := oracleWalk(ref, q, size)
				gotRef := decodePages(t, q, e.walk(t, e.proxy, "reference", startQuery(q), size))
				require.Equal(t, want, gotRef, "pages through the proxy vs S3's pages of node 1's list")
				if n := len(uploadsOf(want)) + len(want) - 1; size == 1 && n > 1 {
					require.Greater(t, len(gotRef), 1, "truncated across pages")
				}
				if strings.Contains(q, "upload-id-marker") {
					return // upload ids differ between the buckets
				}
				gotMP := decodePages(t, q, e.walk(t, e.proxy, "spread", startQuery(q), size))
				assert.Equal(t, keysOnly(want), keysOnly(gotMP), "bucket spread (uploads on every node): the same keys in the same pages")
			})
		}
	}
}

// startQuery keeps the start markers of a case in its first request; walk
// replaces them by the next markers.
func startQuery(q string) string { return q }

type refUpload struct{ key, id string }

func firstID(ref []refUpload, key string) string {
	for _, r := range ref {
		if r.key == key {
			return r.id
		}
	}
	return ""
}

// oracleWalk pages ref (S3 order) as S3 defines ListMultipartUploads
// paging: prefix, then after (key-marker, upload-id-marker), common
// prefixes for delimiter (each counts as one entry, listed once), pages of
// max-uploads (default 1000), next markers = the last entry of a page.
// One difference, MinIO's, which no proxy can undo: MinIO reads a prefix
// as the name of one object (erasureObjects.ListMultipartUploads: "we do
// not support prefix based listing") and answers from disk, not from the
// bucket-wide list; the signed request cannot be changed into another, so
// a prefix lists the uploads of that one object, as MinIO does directly.
func oracleWalk(ref []refUpload, query string, size int) []page {
	v, _ := url.ParseQuery(query)
	prefix, delim := v.Get("prefix"), v.Get("delimiter")
	km, um := v.Get("key-marker"), v.Get("upload-id-marker")
	if size == 0 {
		size = 1000
	}
	var pages []page
	for n := 0; n < 500; n++ {
		start := 0
		switch {
		case km == "":
		case um == "":
			for start < len(ref) && ref[start].key <= km {
				start++
			}
		default:
			for start < len(ref) && !(ref[start].key == km && ref[start].id == um) && ref[start].key <= km {
				start++
			}
			if start < len(ref) && ref[start].key == km && ref[start].id == um {
				start++
			}
		}
		var p page
		lastPrefix, lastK, lastU := "", "", ""
		count := 0
		for i := start; i < len(ref); i++ {
			r := ref[i]
			if prefix != "" && r.key != prefix {
				continue // MinIO: prefix names one object
			}
			cp := ""
			if delim != "" {
				if j := strings.Index(r.key[len(prefix):], delim); j >= 0 {
					cp = r.key[:len(prefix)+j+len(delim)]
				}
			}
			if cp != "" && (cp == lastPrefix || (km != "" && cp <= km)) {
				continue
			}
			if count == size {
				p.IsTruncated = true
				break
			}
			count++
			if cp != "" {
				p.Items = append(p.Items, "P:"+cp)
				lastPrefix, lastK, lastU = cp, cp, ""
				continue
			}
			p.Items = append(p.Items, r.key+"#"+r.id)
			lastK, lastU = r.key, r.id
		}
		if p.IsTruncated {
			p.NextKeyMarker, p.NextUploadIDMarker = lastK, lastU
		}
		p.Items = canonical(p.Items)
		pages = append(pages, p)
		if !p.IsTruncated {
			return pages
		}
		km, um = lastK, lastU
	}
	return pages
}

// canonical orders a page's items as the XML does: uploads, then common
// prefixes.
func canonical(items []string) []string {
	var ups, cps []string
	for _, it := range items {
		if strings.HasPrefix(it, "P:") {
			cps = append(cps, it)
		} else {
			ups = append(ups, it)
		}
	}
	return append(ups, cps...)
}

// decodePages undoes encoding-type=url in keys, prefixes and next key
// markers, so pages compare with the oracle's raw names.
func decodePages(t *testing.T, query string, pages []page) []page {
	t.Helper()
	if !strings.EqualFold(queryValue(query, "encoding-type"), "url") {
		return pages
	}
	dec := func(s string) string {
		d, err := url.QueryUnescape(s)
		require.NoError(t, err, s)
		return d
	}
	out := make([]page, len(pages))
	for i, p := range pages {
		q := p
		q.Items = nil
		for _, it := range p.Items {
			if strings.HasPrefix(it, "P:") {
				q.Items = append(q.Items, "P:"+dec(it[2:]))
				continue
			}
			k, id, _ := strings.Cut(it, "#")
			q.Items = append(q.Items, dec(k)+"#"+id)
		}
		q.NextKeyMarker = dec(p.NextKeyMarker)
		out[i] = q
	}
	return out
}

// keysOnly drops upload ids, for comparing two buckets with the same keys.
func keysOnly(pages []page) [][]string {
	var out [][]string
	for _, p := range pages {
		var ks []string
		for _, it := range p.Items {
			k, _, _ := strings.Cut(it, "#")
			ks = append(ks, k)
		}
		out = append(out, append(ks, fmt.Sprintf("truncated=%v next=%s", p.IsTruncated, p.NextKeyMarker)))
	}
	return out
}

// testObjectPrefix: with prefix=<object>, MinIO reads that object's
// uploads from disk on any node and pages them itself (max-uploads,
// upload-id-marker). The proxy asks every node, deduplicates, and gives
// the same uploads in the same pages as one node asked directly.
func testObjectPrefix(t *testing.T, e *env, keys []string) {
	ctx := ctxT(t, time.Minute)
	cl := e.core(t, e.proxy, "prefix-client")
	const key = "three/uploads"
	var want []string
	for i := 0; i < 3; i++ {
		id, err := cl.NewMultipartUpload(ctx, "spread", key, minio.PutObjectOptions{})
		require.NoError(t, err)
		want = append(want, id)
	}
	q := "uploads&prefix=" + url.QueryEscape(key)
	// MinIO lists an object's uploads from one drive local to the node
	// asked (erasure-multipart.go, ListMultipartUploads), and a create
	// succeeds once its write quorum of drives has the upload: with one
	// drive per node (4 drives, parity 2) that is 3 of the 4 nodes. A node
	// whose drive missed the write lists fewer (seen once in 17 runs).
	// The proxy merges every node's listing, so it has them all.
	const writeQuorum = 3
	complete := 0
	for _, node := range e.c.S3Addrs() {
		// One node asked directly, page by page (MinIO's own paging: it
		// leaves NextKeyMarker empty and continues from upload-id-marker).
		var direct []string
		um := ""
		for n := 0; n < 10; n++ {
			qq := q + "&max-uploads=1"
			if um != "" {
				qq += "&key-marker=" + url.QueryEscape(key) + "&upload-id-marker=" + url.QueryEscape(um)
			}
			r := decode(t, e.rawList(t, node, "spread", qq))
			for _, u := range r.Uploads {
				direct = append(direct, u.UploadID)
			}
			if !r.IsTruncated {
				break
			}
			um = r.NextUploadIDMarker
		}
		if len(direct) < len(want) {
			t.Logf("%s direct lists %d of the %d uploads: its drive missed the write (within MinIO's write quorum)", nodeName(e.c, node), len(direct), len(want))
			continue
		}
		complete++
		assert.Equal(t, want, direct, "%s direct: the object's uploads in initiation order, one page each", nodeName(e.c, node))
	}
	assert.GreaterOrEqual(t, complete, writeQuorum, "nodes listing all of the object's uploads directly")
	pages := e.walk(t, e.proxy, "spread", q, 1)
	require.Len(t, pages, 3, "three pages of one upload")
	var via []string
	for i, p := range pages {
		require.Len(t, p.Items, 1)
		_, id, _ := strings.Cut(p.Items[0], "#")
		via = append(via, id)
		assert.Equal(t, i < 2, p.IsTruncated)
	}
	assert.Equal(t, want, via, "through the proxy: the same uploads, the same pages, no duplicates")
	for _, id := range want {
		require.NoError(t, cl.AbortMultipartUpload(ctx, "spread", key, id))
	}
}

// testS3Tests replays ceph/s3-tests' test_list_multipart_upload with boto3
// through the proxy, then through the same config without s3_list_uploads.
func testS3Tests(t *testing.T, e *env) {
	requirePython(t)
	run := func(endpoint, bucket string) (out struct {
		Created, Listed, Missing []string
	}) {
		cmd := exec.Command("python3", "scripts/list_multipart_upload.py", "http://"+endpoint, bucket)
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+e.user, "AWS_SECRET_ACCESS_KEY="+e.pass,
			"HOME="+home, "AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
			"AWS_EC2_METADATA_DISABLED=true", "NO_PROXY=*")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		require.NoError(t, err, "list_multipart_upload.py via %s: %s", endpoint, stderr.String())
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
		require.Len(t, out.Created, 3)
		return out
	}

	got := run(e.proxy, "s3tests-list")
	assert.Empty(t, got.Missing, "through the proxy every upload is listed: %+v", got)

	// Which nodes did it touch? (access log)
	es, err := e.caddy.AccessLog()
	require.NoError(t, err)
	nodes := map[string]bool{}
	for _, x := range es {
		if x.Request.Method == http.MethodPost && strings.HasPrefix(x.Request.URI, "/s3tests-list/") && strings.Contains(x.Request.URI, "?uploads") {
			nodes[nodeName(e.c, x.String("upstream"))] = true
		}
	}
	t.Logf("s3-tests' uploads were created on %v", nodes)

	// The same Caddyfile without s3_list_uploads: the listing goes to the
	// node of the client's fingerprint, which lists only its own uploads.
	old := strings.Replace(exampleCaddyfile(t), "\t\ts3_list_uploads s3\n", "", 1)
	require.NotEqual(t, exampleCaddyfile(t), old)
	oldCaddy, oldAddr := startCaddy(t, e.c, old)
	got = run(oldAddr, "s3tests-list-old")
	es, err = oldCaddy.AccessLog()
	require.NoError(t, err)
	createdOn, listedOn := map[string]bool{}, ""
	for _, x := range es {
		if !strings.HasPrefix(x.Request.URI, "/s3tests-list-old") {
			continue
		}
		switch {
		case x.Request.Method == http.MethodPost && strings.Contains(x.Request.URI, "?uploads"):
			createdOn[x.String("upstream")] = true
		case x.Request.Method == http.MethodGet && strings.Contains(x.Request.URI, "uploads"):
			listedOn = x.String("upstream")
		}
	}
	t.Logf("without s3_list_uploads: created on %v, listed on %s, missing %d of 3", createdOn, listedOn, len(got.Missing))
	if len(createdOn) > 1 || !createdOn[listedOn] {
		assert.NotEmpty(t, got.Missing, "uploads created on other nodes than the listing's are missing without s3_list_uploads")
	}
}

func requirePython(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("python3", "-c", "import boto3").CombinedOutput(); err != nil {
		t.Fatalf("boto3 not importable (%v: %s); install it: apt-get install -y python3-boto3", err, out)
	}
}

// testNodeDown: a node down fails the listing with 503, never a partial
// list; once back, the listing works and lacks exactly the uploads created
// through that node (MinIO kept them in its memory only; they are still on
// disk, and a prefix listing of their object finds them).
func testNodeDown(t *testing.T, e *env, ids []string) {
	ctx := ctxT(t, 3*time.Minute)
	const down = 3 // node4
	viaDown := uploadsOf(e.walk(t, e.c.Node(down).S3Addr(), "spread", "uploads", 0))
	require.NotEmpty(t, viaDown)
	lostKey := idKey(t, e, viaDown[0])
	require.NotEmpty(t, lostKey)

	require.NoError(t, e.c.Node(down).Kill())
	a := e.rawList(t, e.proxy, "spread", "uploads")
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	assert.Contains(t, string(a.body), "<Code>ServiceUnavailable</Code>")
	assert.Contains(t, string(a.body), "node 4 of 4")
	assert.Equal(t, "application/xml", a.header.Get("Content-Type"))
	t.Logf("listing right after the kill: %d %s", a.status, a.body)

	// Once healthready has seen it (fall 3 x interval 3s), the message
	// says it is not available; the answer is still 503, still no list.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(string(a.body), "is not available") {
		time.Sleep(250 * time.Millisecond)
		a = e.rawList(t, e.proxy, "spread", "uploads")
	}
	assert.Equal(t, http.StatusServiceUnavailable, a.status)
	assert.Contains(t, string(a.body), "node 4 of 4 is not available")

	require.NoError(t, e.c.Node(down).Restart(ctx))
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if a = e.rawList(t, e.proxy, "spread", "uploads"); a.status == http.StatusOK {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	r := decode(t, a)
	var got []string
	for _, u := range r.Uploads {
		got = append(got, u.UploadID)
	}
	lost := map[string]bool{}
	for _, id := range viaDown {
		lost[id] = true
	}
	var want []string
	for _, id := range ids {
		if !lost[id] {
			want = append(want, id)
		}
	}
	assert.Equal(t, sortedCopy(want), sortedCopy(got), "after node 4's restart: every upload but the %d created through node 4", len(viaDown))

	pr := decode(t, e.rawList(t, e.proxy, "spread", "uploads&prefix="+url.QueryEscape(lostKey)))
	found := false
	for _, u := range pr.Uploads {
		found = found || u.UploadID == viaDown[0]
	}
	assert.True(t, found, "an upload created through node 4 is still on disk: prefix=%s lists it", lostKey)
}

// idKey finds the key of upload id by asking node 1 for each key's uploads
// by prefix (MinIO reads those from disk).
func idKey(t *testing.T, e *env, id string) string {
	for _, k := range testKeys() {
		r := decode(t, e.rawList(t, e.c.Node(0).S3Addr(), "spread", "uploads&prefix="+url.QueryEscape(k)))
		for _, u := range r.Uploads {
			if u.UploadID == id {
				return k
			}
		}
	}
	return ""
}
