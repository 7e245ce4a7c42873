package traffic

// Placeholders the minio transport (and, for holds, healthready) sets on
// each proxied request, for the access log
// (`log_append first_node {http.reverse_proxy.minio.first_node}`) or any
// other place Caddy expands placeholders. They name nodes and an
// operation class, never a bucket, an object or the session key: the raw
// session id is not logged (session_affinity's key_hash placeholder is the
// way to tell sessions apart).
//
// Values, so that log_append writes them as plain JSON strings or numbers
// without allocating on the request path:
//   - PlaceholderOp: an s3op.Op (a fmt.Stringer; its String is the label
//     value, e.g. "get_object"),
//   - node placeholders: strings (host:port, as in the metrics' node label),
//   - PlaceholderRetriedNodes: one string, the nodes joined with ",",
//   - PlaceholderAttempts: an int, PlaceholderHoldMS: a float64.
//
// A placeholder the transport did not set expands to "" (log_append then
// writes null), e.g. retried_nodes for a request without retries.
const (
	// PlaceholderOp is the request's S3 operation class (s3op.Op).
	PlaceholderOp = "http.reverse_proxy.minio.op"
	// PlaceholderFirstNode is the node the request was sent to first.
	PlaceholderFirstNode = "http.reverse_proxy.minio.first_node"
	// PlaceholderRetriedNodes lists the nodes the request was retried on
	// after the first failed, in order, comma separated.
	PlaceholderRetriedNodes = "http.reverse_proxy.minio.retried_nodes"
	// PlaceholderHedgedNode is the node a hedged read of the request went
	// to (unset without a hedge).
	PlaceholderHedgedNode = "http.reverse_proxy.minio.hedged_node"
	// PlaceholderAvoidedNode is the slow node a read was moved off before
	// its first attempt (transport minio's slow_factor; unset otherwise):
	// the read went to its key's next node instead.
	PlaceholderAvoidedNode = "http.reverse_proxy.minio.avoided_node"
	// PlaceholderAttempts counts the request's attempts: 1, plus one per
	// retry and per hedge.
	PlaceholderAttempts = "http.reverse_proxy.minio.attempts"
	// PlaceholderOutcome is how the request ended: the Outcome of its last
	// attempt that was not retried ("ok", "failed" or "cancelled").
	PlaceholderOutcome = "http.reverse_proxy.minio.outcome"
	// PlaceholderHoldMS is how long the request waited for a routable node,
	// in milliseconds over all its attempts (unset when it was not held).
	// healthready's hold sets it.
	PlaceholderHoldMS = "http.reverse_proxy.minio.hold_ms"
)

// Placeholders lists every placeholder name above, for documentation and
// its test.
func Placeholders() []string {
	return []string{PlaceholderOp, PlaceholderFirstNode, PlaceholderRetriedNodes, PlaceholderHedgedNode,
		PlaceholderAvoidedNode, PlaceholderAttempts, PlaceholderOutcome, PlaceholderHoldMS}
}
