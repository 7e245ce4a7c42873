// Package e2e proves caddy-minio-lb end to end: a real distributed 4-node
// MinIO cluster on loopback (internal/miniocluster) behind the custom Caddy
// built by `./xcaddy.sh build` ($CADDY_BIN, default bin/caddy), running
// examples/Caddyfile itself with its environment variables filled in, driven
// by real S3 clients (minio-go and awscli) through node crashes, hangs,
// restarts, a full outage and a config reload.
//
// Every assertion about routing is read back from Caddy's JSON access log
// (the `upstream`, `affinity_source` and `affinity_key` fields that
// examples/Caddyfile appends), never assumed. The numbers measured
// (detection and recovery times, failed requests per scenario, latencies)
// are printed as a table at the end of TestE2E; docs/testing.md (End to end) and docs/benchmarks.md explain them.
//
// Run it with `./xcaddy.sh test` (everything) or, after `./xcaddy.sh build`
// and `./xcaddy.sh minio`:
//
//	CADDY_BIN=$PWD/bin/caddy go test -race -count=1 -v ./test/e2e/
//
// Nothing skips: a missing Caddy, MinIO or awscli fails the test with the
// command that installs it.
package e2e
