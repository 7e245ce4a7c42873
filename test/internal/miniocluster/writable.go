package miniocluster

import (
	"bytes"
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// writableBucket holds the probe objects of WaitWritable; it is removed
// again, so tests that list buckets see only their own.
const writableBucket = "miniocluster-writable"

// WaitWritable waits until every running node takes a write: a bucket is
// made and one small object put and deleted through each node, each step
// retried while MinIO answers 503 (SlowDownWrite and friends: a cluster
// whose nodes all answer ready can still lack write quorum for a few
// seconds while its drives and lock connections settle). The bucket is
// removed at the end. ctx bounds the wait; without a deadline the
// cluster's ReadyTimeout does.
func (c *Cluster) WaitWritable(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.ReadyTimeout)
		defer cancel()
	}
	var first *minio.Client
	for _, n := range c.nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		mc, err := minio.New(n.S3Addr(), &minio.Options{
			Creds:      credentials.NewStaticV4(c.opt.RootUser, c.opt.RootPassword, ""),
			Region:     "us-east-1",
			MaxRetries: 1, // retried here, with the 503 rule
		})
		if err != nil {
			return err
		}
		if first == nil {
			first = mc
			err := RetrySlowDown(ctx, func() error {
				err := mc.MakeBucket(ctx, writableBucket, minio.MakeBucketOptions{})
				if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
					return nil
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("miniocluster: node %d: make bucket: %w", n.index+1, err)
			}
		}
		object := fmt.Sprintf("node%d", n.index+1)
		err = RetrySlowDown(ctx, func() error {
			_, err := mc.PutObject(ctx, writableBucket, object, bytes.NewReader([]byte(object)), int64(len(object)), minio.PutObjectOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("miniocluster: node %d not writable: %w", n.index+1, err)
		}
		if err := RetrySlowDown(ctx, func() error {
			return mc.RemoveObject(ctx, writableBucket, object, minio.RemoveObjectOptions{})
		}); err != nil {
			return fmt.Errorf("miniocluster: node %d: remove %s: %w", n.index+1, object, err)
		}
	}
	if first == nil {
		return nil
	}
	if err := RetrySlowDown(ctx, func() error { return first.RemoveBucket(ctx, writableBucket) }); err != nil {
		return fmt.Errorf("miniocluster: remove bucket %s: %w", writableBucket, err)
	}
	return nil
}
