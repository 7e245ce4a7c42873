package caddyfile

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files of testdata/")

// TestGolden adapts every testdata/*.caddyfile and compares the result with
// the committed testdata/*.json; each adapted config must also pass Caddy's
// own validation (provisioning of every module, no listeners started).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.caddyfile"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			t.Setenv("AFFINITY_SALT", "golden-salt")
			got := indent(t, adapt(t, readFile(t, in), filepath.Base(in)))
			goldenPath := strings.TrimSuffix(in, ".caddyfile") + ".json"
			if *update {
				require.NoError(t, os.WriteFile(goldenPath, got, 0o644))
			}
			want, err := os.ReadFile(goldenPath)
			require.NoError(t, err, "no golden file; run: go test ./caddyfile/ -run Golden -update")
			require.Equal(t, string(want), string(got), "adapted %s differs from %s", in, goldenPath)

			validate(t, got)
		})
	}
}

// TestGoldenExampleDefaults pins examples/Caddyfile adapted with no
// environment at all: the defaults an operator gets by copying the file.
func TestGoldenExampleDefaults(t *testing.T) {
	for k := range demoEnv {
		t.Setenv(k, "") // registers the restore
		require.NoError(t, os.Unsetenv(k))
	}
	path := filepath.Join(repoRoot(t), "examples", "Caddyfile")
	got := indent(t, adapt(t, readFile(t, path), "Caddyfile"))
	goldenPath := filepath.Join("testdata", "example_defaults.json")
	if *update {
		require.NoError(t, os.WriteFile(goldenPath, got, 0o644))
	}
	require.Equal(t, string(readFile(t, goldenPath)), string(got))
	validate(t, got)
}

// validate runs caddy.Validate: every module is provisioned (healthready
// starts and stops its probe loops), nothing listens.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	var cfg caddy.Config
	require.NoError(t, json.Unmarshal(doc, &cfg))
	cfg.Admin = &caddy.AdminConfig{Disabled: true}
	require.NoError(t, caddy.Validate(&cfg))
}
