package miniocluster_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// TestFactReadyOfflineDuringStart watches every node come up and records
// what /minio/health/ready and /minio/health/cluster answer on the way.
// DESIGN.md: a starting node answers ready 200 with
// X-Minio-Server-Status: offline. The harness must not call such a node
// ready, and after WaitReady no node may carry the header.
func TestFactReadyOfflineDuringStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := miniocluster.StartT(t, miniocluster.Options{NoWait: true})
	t0 := time.Now()
	type state struct{ ready, cluster string }
	timeline := make([][]string, len(c.Nodes()))
	last := make([]state, len(c.Nodes()))
	offline200 := 0
	for time.Since(t0) < 60*time.Second {
		all := true
		for i, n := range c.Nodes() {
			var s state
			if r, err := n.Probe(ctx, "/minio/health/ready"); err != nil {
				s.ready = "down"
			} else {
				s.ready = fmt.Sprint(r.Status)
				if r.Offline() {
					s.ready += "+offline"
					if r.Status == http.StatusOK {
						offline200++
					}
				}
			}
			if r, err := n.Probe(ctx, "/minio/health/cluster"); err != nil {
				s.cluster = "down"
			} else {
				s.cluster = fmt.Sprint(r.Status)
			}
			if s != last[i] {
				timeline[i] = append(timeline[i], fmt.Sprintf("%s ready=%s cluster=%s", time.Since(t0).Round(10*time.Millisecond), s.ready, s.cluster))
				last[i] = s
			}
			if s.ready != "200" || s.cluster != "200" {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, tl := range timeline {
		t.Logf("node %d: %s", i+1, strings.Join(tl, " | "))
	}
	t.Logf("probes that answered 200 with X-Minio-Server-Status: offline: %d", offline200)
	require.NoError(t, c.WaitReady(ctx))
	for _, n := range c.Nodes() {
		r, err := n.Probe(ctx, "/minio/health/ready")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.False(t, r.Offline(), "node %d still offline after WaitReady", n.Index()+1)
	}
}

// TestFactListMultipartUploadsPerNode: DESIGN.md says a bucket-wide
// ListMultipartUploads only lists the uploads created through the node
// asked, while a prefix list finds them on any node. Session affinity for
// multipart requests rests on this.
func TestFactListMultipartUploadsPerNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := miniocluster.StartT(t, miniocluster.Options{})
	user, pass := c.Credentials()
	core := func(n *miniocluster.Node) *minio.Core {
		cl, err := minio.NewCore(n.S3Addr(), &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1"})
		require.NoError(t, err)
		return cl
	}
	n1, n2 := core(c.Node(0)), core(c.Node(1))
	require.NoError(t, n1.MakeBucket(ctx, "mpu", minio.MakeBucketOptions{}))
	id, err := n1.NewMultipartUpload(ctx, "mpu", "dir/object", minio.PutObjectOptions{})
	require.NoError(t, err)

	list := func(cl *minio.Core, prefix string) []string {
		res, err := cl.ListMultipartUploads(ctx, "mpu", prefix, "", "", "", 1000)
		require.NoError(t, err)
		var ids []string
		for _, u := range res.Uploads {
			ids = append(ids, u.UploadID)
		}
		return ids
	}
	assert.Equal(t, []string{id}, list(n1, ""), "node 1 lists the upload it created")
	assert.Empty(t, list(n2, ""), "node 2's bucket-wide list misses an upload created on node 1 (the DESIGN.md fact)")
	// With the object as prefix the node reads the upload directory from
	// one of its drives (MinIO: erasureObjects.ListMultipartUploads), so any
	// node finds it; right after start it was seen to miss it for a moment,
	// hence the bounded retry (the time is logged).
	t0 := time.Now()
	var got []string
	for tries := 0; tries < 100; tries++ {
		if got = list(n2, "dir/object"); len(got) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, []string{id}, got, "with the object as prefix node 2 finds the upload")
	t.Logf("node 2 prefix list found the upload after %s", time.Since(t0).Round(time.Millisecond))

	// A part uploaded through another node belongs to the same upload.
	part, err := n2.PutObjectPart(ctx, "mpu", "dir/object", id, 1, strings.NewReader("part-one"), 8, minio.PutObjectPartOptions{})
	require.NoError(t, err, "part through node 2")
	_, err = n1.CompleteMultipartUpload(ctx, "mpu", "dir/object", id, []minio.CompletePart{{PartNumber: 1, ETag: part.ETag}}, minio.PutObjectOptions{})
	require.NoError(t, err, "complete through node 1")
}
