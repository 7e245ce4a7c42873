package caddyproc

import (
	"fmt"
	"strings"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
)

// Sites are the listen ports and secrets examples/Caddyfile is run with.
type Sites struct {
	S3Port      int    // S3_PORT
	ConsolePort int    // CONSOLE_PORT
	ListenHost  string // LISTEN_HOST, default 127.0.0.1 (never every interface in tests)
	AdminAddr   string // CADDY_ADMIN; empty: caddyproc's free admin port
	Salt        string // AFFINITY_SALT, default "caddyproc-test-salt"
}

// ExampleEnv is the environment examples/Caddyfile reads, for cluster c:
// LISTEN_HOST, S3_PORT, CONSOLE_PORT, MINIO_S3 and MINIO_CONSOLE (the
// nodes' addresses, space separated, in node order: Caddy expands an env
// value into several tokens), CADDY_ADMIN and AFFINITY_SALT.
func ExampleEnv(c *miniocluster.Cluster, s Sites) []string {
	if s.ListenHost == "" {
		s.ListenHost = "127.0.0.1"
	}
	if s.Salt == "" {
		s.Salt = "caddyproc-test-salt"
	}
	env := []string{
		"LISTEN_HOST=" + s.ListenHost,
		fmt.Sprintf("S3_PORT=%d", s.S3Port),
		fmt.Sprintf("CONSOLE_PORT=%d", s.ConsolePort),
		"MINIO_S3=" + strings.Join(c.S3Addrs(), " "),
		"MINIO_CONSOLE=" + strings.Join(c.ConsoleAddrs(), " "),
		"AFFINITY_SALT=" + s.Salt,
	}
	if s.AdminAddr != "" {
		env = append(env, "CADDY_ADMIN="+s.AdminAddr)
	}
	return env
}
