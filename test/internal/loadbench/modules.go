package loadbench

// The harness drives our selection policy in-process (hash quality) and
// adapts our Caddyfiles in tests, so it links the plugin's modules.
import (
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/minio-lb/caddy-minio-lb/healthready"
	_ "github.com/minio-lb/caddy-minio-lb/miniotransport"
	_ "github.com/minio-lb/caddy-minio-lb/sessionaffinity"
)
