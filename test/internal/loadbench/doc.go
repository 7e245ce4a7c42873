// Package loadbench is the load harness behind `./xcaddy.sh bench`.
//
// It puts identical workloads, in one run and interleaved, through our
// Caddy (dynamic healthready + lb_policy session_affinity), the same Caddy
// binary with stock upstreams/health checks/lb_policy query, nginx configured
// like the original OpenResty setup, HAProxy, and straight to one backend.
// Backends are fast in-process Go servers (proxy overhead) and a real MinIO
// cluster (S3 objects). It also compares hashing quality (distribution and
// movement) and runs a failover timeline per proxy.
//
// Everything runs on loopback; every loop is bounded in request count and
// in time.
package loadbench
