package miniocluster

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// RetrySlowDown runs op until it returns anything but MinIO's own 503
// answer (SlowDown*, XMinioServerNotInitialized: S3's "retry later"), or
// ctx ends; then it returns the last error. A cluster that has just
// started, or just lost or regained a node, answers ready and can still
// refuse writes for a few seconds while its drives and locks settle; S3
// SDKs retry this answer, and so do the harness's own checks.
//
// A 503 that names no S3 error code is returned at once: MinIO names one
// on every S3 answer (in the XML body, or in x-minio-error-code on HEAD),
// so a bare 503 comes from something in front of it, such as a proxy with
// no node to send the request to, and a test must see that.
func RetrySlowDown(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || !minioSaysRetry(minio.ToErrorResponse(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// RetryNotYetVisible runs op until it returns anything but NoSuchKey, or
// ctx ends; then it returns the last error, with how many times op
// answered NoSuchKey before. A MinIO node that reports ready right after
// a restart can answer 404 NoSuchKey for a while, for objects on peers
// it has not reconnected to yet (seen: every object of a test 404 from
// one node after a whole-cluster restart, and an object written before
// the restart 404 from the restarted node); an object that is really gone
// still fails, when ctx ends.
func RetryNotYetVisible(ctx context.Context, op func() error) (notYet int, err error) {
	for {
		err = op()
		if err == nil || minio.ToErrorResponse(err).Code != "NoSuchKey" {
			return notYet, err
		}
		notYet++
		select {
		case <-ctx.Done():
			return notYet, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// minioSaysRetry reports whether resp is MinIO asking the client to come
// back later. minio-go fills Code with the HTTP status line ("503 Service
// Unavailable") when the answer named no code.
func minioSaysRetry(resp minio.ErrorResponse) bool {
	if strings.HasPrefix(resp.Code, "SlowDown") {
		return true
	}
	named := resp.Code != "" && !strings.HasPrefix(resp.Code, "503")
	return resp.StatusCode == http.StatusServiceUnavailable && named
}
