package miniocluster

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// RetrySlowDown runs op until it returns anything but a 503 answer
// (MinIO's SlowDown*, S3's "retry later"), or ctx ends; then it returns
// the last error. A cluster that has just started, or just lost or
// regained a node, answers ready and can still refuse writes for a few
// seconds while its drives and locks settle; S3 SDKs retry this answer,
// and so do the harness's own checks.
func RetrySlowDown(ctx context.Context, op func() error) error {
	for {
		err := op()
		resp := minio.ToErrorResponse(err)
		if err == nil || (resp.StatusCode != http.StatusServiceUnavailable && !strings.HasPrefix(resp.Code, "SlowDown")) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
