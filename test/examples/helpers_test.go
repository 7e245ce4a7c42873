package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
)

// demoEnv is the environment of the loopback demo: the values that
// examples/caddy.json carries literally.
var demoEnv = map[string]string{
	"LISTEN_HOST":   "127.0.0.1",
	"S3_PORT":       "9000",
	"CONSOLE_PORT":  "9001",
	"MINIO_S3":      "127.0.0.1:9101 127.0.0.1:9102 127.0.0.1:9103 127.0.0.1:9104",
	"MINIO_CONSOLE": "127.0.0.1:9201 127.0.0.1:9202 127.0.0.1:9203 127.0.0.1:9204",
	"CADDY_ADMIN":   "localhost:2019",
}

func repoRoot(t testing.TB) string { return caddyproc.RepoRootT(t) }

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// tool returns the path of a command the tests need; a missing one fails
// the test with the Debian package that has it (./xcaddy.sh test installs
// them all).
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is not installed: apt-get install %s (./xcaddy.sh test installs it)", name, pkg)
	return p
}

func keepalivedDir(t testing.TB) string { return filepath.Join(repoRoot(t), "examples", "keepalived") }

func systemdDir(t testing.TB) string { return filepath.Join(repoRoot(t), "examples", "systemd") }
