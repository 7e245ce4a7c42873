package loadbench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 workload constants: GETs read S3Objects objects of 1 MiB; multipart
// uploads send one 5 MiB part (S3's minimum for a non-last part) and one
// 1 MiB part.
const (
	S3Bucket     = "loadbench"
	S3Objects    = 32
	S3ObjectSize = 1 << 20
	mpPartSize   = 5 << 20
	mpLastSize   = 1 << 20
)

var mpPart = bytes.Repeat(payload, mpPartSize/len(payload))

// S3Client is a minio-go client of endpoint ("127.0.0.1:port", plain
// HTTP) with a fixed region, so presigning never asks the server; appName
// becomes part of the User-Agent (each worker looks like its own client to
// a fingerprinting proxy).
func S3Client(endpoint, user, pass, appName string, tr http.RoundTripper) (*minio.Client, error) {
	c, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(user, pass, ""),
		Secure:    false,
		Region:    "us-east-1",
		Transport: tr,
	})
	if err != nil {
		return nil, err
	}
	if appName != "" {
		c.SetAppInfo(appName, "1")
	}
	return c, nil
}

// PrepareS3 creates the bucket and the objects the GET workload reads,
// straight on endpoint (a MinIO node).
func PrepareS3(ctx context.Context, endpoint, user, pass string) error {
	c, err := S3Client(endpoint, user, pass, "", nil)
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, S3Bucket, minio.MakeBucketOptions{}); err != nil {
		if exists, e2 := c.BucketExists(ctx, S3Bucket); e2 != nil || !exists {
			return fmt.Errorf("creating bucket %s: %w", S3Bucket, err)
		}
	}
	for i := 0; i < S3Objects; i++ {
		_, err := c.PutObject(ctx, S3Bucket, fmt.Sprintf("obj-%02d", i), bytes.NewReader(payload[:S3ObjectSize]),
			S3ObjectSize, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return fmt.Errorf("uploading obj-%02d: %w", i, err)
		}
	}
	return nil
}

// presignPool presigns n URLs for method on endpoint, each with its own
// sessionid signed into the query (SigV4 signs the query, so the id must
// be there before signing).
func presignPool(ctx context.Context, endpoint, user, pass, method string, n int, object func(i int) string) ([]string, error) {
	c, err := S3Client(endpoint, user, pass, "", nil)
	if err != nil {
		return nil, err
	}
	urls := make([]string, n)
	for i := range urls {
		q := url.Values{"sessionid": {fmt.Sprintf("s%06d", i)}}
		u, err := c.Presign(ctx, method, S3Bucket, object(i), time.Hour, q)
		if err != nil {
			return nil, err
		}
		urls[i] = u.String()
	}
	return urls, nil
}

// S3GET reads 1 MiB objects through endpoint with presigned URLs carrying
// a sessionid.
func S3GET(ctx context.Context, hc *http.Client, endpoint, user, pass string) (Op, error) {
	urls, err := presignPool(ctx, endpoint, user, pass, http.MethodGet, 256, func(i int) string { return fmt.Sprintf("obj-%02d", i%S3Objects) })
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ int, rng *rand.Rand) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[rng.IntN(len(urls))], nil)
		if err != nil {
			return 0, err
		}
		n, err := doHTTP(hc, req)
		if err == nil && n != S3ObjectSize {
			err = fmt.Errorf("GET: %d bytes, want %d", n, S3ObjectSize)
		}
		return n, err
	}, nil
}

// S3PUT writes 1 MiB objects through endpoint with presigned PUT URLs
// carrying a sessionid.
func S3PUT(ctx context.Context, hc *http.Client, endpoint, user, pass string) (Op, error) {
	urls, err := presignPool(ctx, endpoint, user, pass, http.MethodPut, 64, func(i int) string { return fmt.Sprintf("put-%02d", i) })
	if err != nil {
		return nil, err
	}
	body := payload[:S3ObjectSize]
	return func(ctx context.Context, _ int, rng *rand.Rand) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, urls[rng.IntN(len(urls))], bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.ContentLength = int64(len(body))
		if _, err := doHTTP(hc, req); err != nil {
			return 0, err
		}
		return int64(len(body)), nil
	}, nil
}

// S3Multipart makes one whole multipart upload per call (create, two
// parts, complete) through endpoint with minio-go. No sessionid: the
// proxies key it by uploadId (parts, complete) and by client fingerprint
// (create) or spread it at random (stock Caddy, HAProxy). Each worker has
// its own User-Agent.
func S3Multipart(hc *http.Client, endpoint, user, pass string, workers int) (Op, error) {
	cores := make([]minio.Core, workers)
	for w := range cores {
		c, err := S3Client(endpoint, user, pass, fmt.Sprintf("loadbench-w%d", w), hc.Transport)
		if err != nil {
			return nil, err
		}
		cores[w] = minio.Core{Client: c}
	}
	return func(ctx context.Context, w int, rng *rand.Rand) (int64, error) {
		c := cores[w]
		obj := fmt.Sprintf("mp-%d-%d", w, rng.IntN(4))
		id, err := c.NewMultipartUpload(ctx, S3Bucket, obj, minio.PutObjectOptions{})
		if err != nil {
			return 0, fmt.Errorf("create: %w", err)
		}
		var parts []minio.CompletePart
		var moved int64
		for i, size := range []int{mpPartSize, mpLastSize} {
			p, err := c.PutObjectPart(ctx, S3Bucket, obj, id, i+1, bytes.NewReader(mpPart[:size]), int64(size),
				minio.PutObjectPartOptions{DisableContentSha256: true})
			if err != nil {
				_ = c.AbortMultipartUpload(context.WithoutCancel(ctx), S3Bucket, obj, id)
				return moved, fmt.Errorf("part %d: %w", i+1, err)
			}
			moved += int64(size)
			parts = append(parts, minio.CompletePart{PartNumber: i + 1, ETag: p.ETag})
		}
		if _, err := c.CompleteMultipartUpload(ctx, S3Bucket, obj, id, parts, minio.PutObjectOptions{}); err != nil {
			return moved, fmt.Errorf("complete: %w", err)
		}
		return moved, nil
	}, nil
}
