// Package caddyminiolb registers the caddy-minio-lb modules with Caddy.
//
// Build a Caddy with them:
//
//	xcaddy build v2.11.9 --with github.com/minio-lb/caddy-minio-lb
package caddyminiolb

import (
	_ "github.com/minio-lb/caddy-minio-lb/healthready"
	_ "github.com/minio-lb/caddy-minio-lb/minioadmin"
	_ "github.com/minio-lb/caddy-minio-lb/miniotransport"
	_ "github.com/minio-lb/caddy-minio-lb/s3errors"
	_ "github.com/minio-lb/caddy-minio-lb/s3headers"
	_ "github.com/minio-lb/caddy-minio-lb/s3listuploads"
	_ "github.com/minio-lb/caddy-minio-lb/sessionaffinity"
)
