package caddyfile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/stretchr/testify/require"

	_ "github.com/minio-lb/caddy-minio-lb"           // session_affinity, healthready
	_ "github.com/minio-lb/caddy-minio-lb/s3headers" // s3_header_case
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

// repoRoot is the module root (the parent of this package's directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Dir(filepath.Dir(file))
}

// setDemoEnv sets the demo environment for the test (not parallel-safe:
// the Caddyfile adapter reads {$VAR} from the process environment).
func setDemoEnv(t *testing.T) {
	t.Helper()
	for k, v := range demoEnv {
		t.Setenv(k, v)
	}
}

// adapt runs Caddy's caddyfile adapter as `caddy adapt` does and fails the
// test on warnings, which would otherwise go unnoticed in an example.
func adapt(t *testing.T, body []byte, filename string) []byte {
	t.Helper()
	out, warnings, err := adaptErr(body, filename)
	require.NoError(t, err)
	require.Empty(t, warnings, "adapter warnings for %s", filename)
	return out
}

func adaptErr(body []byte, filename string) ([]byte, []caddyconfig.Warning, error) {
	return caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": filename})
}

// normalize decodes JSON into plain values so that two documents compare
// equal whatever their key order and white space.
func normalize(t testing.TB, doc []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&v), "invalid JSON:\n%s", doc)
	return v
}

// indent pretty-prints JSON the way the golden files are stored.
func indent(t testing.TB, doc []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, doc, "", "\t"))
	buf.WriteByte('\n')
	return buf.Bytes()
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
