package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
)

// caddyBin is the custom Caddy that ./xcaddy.sh build makes (env CADDY_BIN,
// default bin/caddy).
func caddyBin(t testing.TB) string { return caddyproc.BinaryT(t) }

// runCaddy runs the binary from the repository root with the demo
// environment and returns its stdout; stderr goes into the failure message.
func runCaddy(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(caddyBin(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "AFFINITY_SALT=binary-test")
	for k, v := range demoEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	require.NoError(t, err, "caddy %v:\n%s", args, stderr)
	return out
}

// TestBinaryValidatesExamples: the built caddy (with our modules) accepts
// examples/Caddyfile and examples/caddy.json, and its own adapter turns the
// Caddyfile into caddy.json.
func TestBinaryValidatesExamples(t *testing.T) {
	mods := string(runCaddy(t, "list-modules"))
	for _, m := range []string{
		"http.reverse_proxy.selection_policies.session_affinity",
		"http.reverse_proxy.upstreams.healthready",
		"http.handlers.healthready_status",
		"http.handlers.s3_header_case",
		"http.handlers.s3_errors",
		"http.reverse_proxy.transport.minio",
	} {
		require.True(t, strings.Contains(mods, m), "%s lacks module %s: is its package imported by the root imports.go? then run ./xcaddy.sh build", caddyBin(t), m)
	}

	runCaddy(t, "validate", "--config", "examples/Caddyfile", "--adapter", "caddyfile")
	runCaddy(t, "validate", "--config", "examples/caddy.json")

	adapted := runCaddy(t, "adapt", "--config", "examples/Caddyfile", "--adapter", "caddyfile")
	want := readFile(t, filepath.Join(repoRoot(t), "examples", "caddy.json"))
	require.JSONEq(t, string(want), string(adapted), "`caddy adapt` of examples/Caddyfile differs from examples/caddy.json")
}
