// Package loadbench is the load harness behind `./xcaddy.sh bench`.
//
// It puts identical workloads, in one run and interleaved, through our
// Caddy (dynamic healthready + lb_policy session_affinity), the same Caddy
// binary with stock upstreams/health checks/lb_policy query, nginx configured
// like the original OpenResty setup, HAProxy, and straight to one backend.
// Backends are fast in-process Go servers (proxy overhead) and a real MinIO
// cluster (S3 objects). It also compares hashing quality (distribution and
// movement) and runs a failover timeline per proxy. The heavy-client cell
// is one client host with one User-Agent on 16 connections (GET:PUT 3:1,
// no sessionid) against 4 fast backends behind bandwidth-capped links
// (internal/faultproxy, -heavy-bw MiB/s each way, default 100: the links
// bind, not a backend's CPU): it shows how each proxy spreads one client's
// traffic (shares per node) and what that does to throughput.
//
// Everything runs on loopback; every loop is bounded in request count and
// in time.
package loadbench
