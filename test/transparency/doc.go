// Package transparency proves that an S3 client sees through the
// caddy-minio-lb proxy exactly what it sees when it talks to a MinIO node
// directly.
//
// The tests start a real MinIO server and two Caddy processes in front of it:
// "ours" (configured like the S3 site of examples/Caddyfile) and "stock" (a
// plain reverse_proxy, the negative control). Every operation of the matrix is
// sent direct and through each proxy, and the responses are compared header by
// header with their exact on-the-wire names, body by body, and through the
// eyes of real clients (minio-go, boto3, awscli).
//
// The package holds tests and benchmarks only; see docs/testing.md, Transparency.
package transparency
