package miniocluster_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// s3Error is the body MinIO writes for an S3 error (cmd/api-response.go).
func s3Error(code string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>m</Message><Resource>/b/k</Resource><RequestId>1</RequestId></Error>`
}

// fakeS3Client is a minio-go client of srv that makes one try per call,
// so that the retries counted are the helper's.
func fakeS3Client(t *testing.T, srv *httptest.Server) *minio.Client {
	t.Helper()
	mc, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4("u", "p", ""), Region: "us-east-1", MaxRetries: 1,
	})
	require.NoError(t, err)
	return mc
}

// TestRetrySlowDown answers the first refusals of a PutObject as the table
// says, then 200, and checks whether RetrySlowDown went on to the 200.
func TestRetrySlowDown(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		wantRetry bool
	}{
		{"MinIO SlowDownWrite", http.StatusServiceUnavailable, nil, s3Error("SlowDownWrite"), true},
		{"MinIO not initialized", http.StatusServiceUnavailable, nil, s3Error("XMinioServerNotInitialized"), true},
		{"MinIO code in header only", http.StatusServiceUnavailable, map[string]string{"x-minio-error-code": "SlowDownRead"}, "", true},
		{"bare 503 from a proxy", http.StatusServiceUnavailable, nil, "", false},
		{"503 with a non-S3 body", http.StatusServiceUnavailable, nil, "no upstreams available", false},
		{"502 from a proxy", http.StatusBadGateway, nil, "", false},
		{"MinIO 500", http.StatusInternalServerError, nil, s3Error("InternalError"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 2 {
					w.Header().Set("ETag", `"e"`)
					return
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			mc := fakeS3Client(t, srv)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := miniocluster.RetrySlowDown(ctx, func() error {
				_, err := mc.PutObject(ctx, "bucket", "k", strings.NewReader("x"), 1, minio.PutObjectOptions{})
				return err
			})
			if tt.wantRetry {
				require.NoError(t, err)
				assert.EqualValues(t, 3, calls.Load(), "two refusals, then the write")
				return
			}
			require.Error(t, err)
			assert.False(t, errors.Is(err, context.DeadlineExceeded))
			assert.Equal(t, tt.status, minio.ToErrorResponse(err).StatusCode)
			assert.EqualValues(t, 1, calls.Load(), "returned after the first answer")
		})
	}
}

// TestRetryNotYetVisible answers the first two reads of an object as the
// table says, then with the object, and checks whether RetryNotYetVisible
// went on to the object and how many 404s it counted.
func TestRetryNotYetVisible(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		code        string
		wantRetry   bool
		wantNotYets int
	}{
		{"NoSuchKey from a node not reconnected yet", http.StatusNotFound, "NoSuchKey", true, 2},
		{"NoSuchBucket", http.StatusNotFound, "NoSuchBucket", false, 0},
		{"AccessDenied", http.StatusForbidden, "AccessDenied", false, 0},
		{"MinIO SlowDownRead", http.StatusServiceUnavailable, "SlowDownRead", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 2 {
					w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
					w.Header().Set("ETag", `"e"`)
					_, _ = w.Write([]byte("data"))
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(s3Error(tt.code)))
			}))
			defer srv.Close()
			mc := fakeS3Client(t, srv)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var got []byte
			notYet, err := miniocluster.RetryNotYetVisible(ctx, func() error {
				obj, err := mc.GetObject(ctx, "bucket", "k", minio.GetObjectOptions{})
				if err != nil {
					return err
				}
				defer obj.Close()
				got, err = io.ReadAll(obj)
				return err
			})
			assert.Equal(t, tt.wantNotYets, notYet, "404s counted")
			if tt.wantRetry {
				require.NoError(t, err)
				assert.Equal(t, "data", string(got))
				assert.EqualValues(t, 3, calls.Load(), "two 404s, then the object")
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.code, minio.ToErrorResponse(err).Code)
			assert.EqualValues(t, 1, calls.Load(), "returned after the first answer")
		})
	}
}

// TestRetryNotYetVisibleEndsWithItsContext: an object that stays 404 (it
// is really gone) fails with NoSuchKey once ctx ends, not later.
func TestRetryNotYetVisibleEndsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(s3Error("NoSuchKey")))
	}))
	defer srv.Close()
	mc := fakeS3Client(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	notYet, err := miniocluster.RetryNotYetVisible(ctx, func() error {
		_, err := mc.StatObject(context.Background(), "bucket", "k", minio.StatObjectOptions{})
		return err
	})
	require.Error(t, err)
	assert.Equal(t, "NoSuchKey", minio.ToErrorResponse(err).Code)
	assert.GreaterOrEqual(t, notYet, 2, "retried while ctx lasted")
	select {
	case <-ctx.Done():
	default:
		t.Fatal("returned before its context ended")
	}
}
