// Package traffic keeps the per-node traffic statistics of caddy-minio-lb:
// what the proxy sent to each MinIO node, per S3 operation class, how it
// ended, how long the node took to answer, and what happened around it
// (retries to other nodes, hedged reads, busy refusals, holds).
// The reverse_proxy transport records every attempt here; Caddy's /metrics
// (through the collector of Register) and the healthready status page
// (through Window) read it.
//
// # Who calls what
//
// The transport calls, for every attempt of a proxied request:
//
//	n := traffic.For(pool, hostport) // once per node; cache the pointer
//	n.Begin()                        // the attempt starts
//	...
//	n.End(op, status, ttfb, outcome, bytesIn, bytesOut)
//
// and, as they happen, n.Retry(next), n.Hedge(won), n.Busy(),
// n.ShuttingDown(), and traffic.Pool(pool).HoldBegin(),
// .Hold(wait, result), .HoldRejected() (healthready records its holds).
// Drains are node states of healthready (caddy_minio_lb_node_state). Every call is safe for concurrent
// use and allocates nothing.
//
// pool is the healthready pool name (the `name` option), node the node's
// dial address as the pool lists it in its upstreams (host:port, as the
// status page's `upstream` field shows it), so the status page finds the
// same node.
//
// # Attempts and outcomes
//
// An attempt is one request sent to one node. A client request that is
// retried on another node is two attempts, on two nodes; a hedged read is
// two attempts in parallel. Everything per node counts attempts, because
// that is what the node saw. Each attempt ends with exactly one Outcome:
//
//   - OK: the node's response went to the client as the answer to the
//     request, and the transport did not treat it as a failure. Its status
//     may be anything (an S3 404 NoSuchKey or a 501 NotImplemented is an
//     answer, not a node failure): the status label tells.
//   - Retried: the attempt failed (no response, or a response the
//     transport's retry rule treats as a failure: a 502/503/504, a busy or
//     shutting-down refusal) and the request went on to another node.
//     n.Retry(next) says which one.
//   - Failed: the attempt failed and the request ended with it: no node
//     was left to try, the retry budget was spent, or the request could
//     not be resent (a streamed body). The client got an error: the
//     proxy's own 502/504, or this failed response passed on.
//   - Cancelled: the attempt was abandoned without being a failure of the
//     node: the other attempt of a hedged read answered first (the loser),
//     or the client went away.
//
// So client requests are the attempts with outcome OK or Failed, plus
// the Cancelled ones whose client went away; client errors caused by the
// cluster are the Failed ones; "retries that landed elsewhere" are the
// Retried ones (and the retries metric says where they landed).
//
// # Status and errors
//
// status is the node's HTTP status, 0 when there was none (dial error,
// reset, timeout, cancelled before the response). Metrics carry its class
// (1xx..5xx, or none). An attempt is an error of the node, for the status
// page's error %, when its outcome is not Cancelled and it got no response
// or a 5xx. 4xx answers are the client's business (NoSuchKey, AccessDenied)
// and are not errors of the node.
//
// ttfb is the time from sending the request to the first byte of the
// response head. Latency histograms and percentiles only use attempts with
// a response (status > 0): a timeout is not a latency, it is an error with
// status none.
//
// bytesIn and bytesOut use HAProxy's meaning: bytesIn are the request
// (body) bytes sent to the node, the upload direction; bytesOut are the
// response (body) bytes read from the node and sent on, the download
// direction.
//
// # Bounded memory and labels
//
// State lives for the life of the process and survives `caddy reload`, as
// healthready's counters do: a reload does not reset a counter. A pool
// keeps at most MaxPoolNodes nodes and the process at most MaxPools pools;
// further nodes of a pool share one node named "_overflow", further pools
// one pool named "_overflow". Labels are the pool name, the node address,
// the S3 operation class (s3op.Op, a fixed set), the status class and the
// outcome: never a bucket or object name, a session id or a client
// address. The metric list and the series bound are in docs/observability.md.
package traffic
