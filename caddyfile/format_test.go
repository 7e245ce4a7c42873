package caddyfile

import (
	"path/filepath"
	"testing"

	caddycf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/stretchr/testify/require"
)

// TestCaddyfilesFormatted: every Caddyfile we ship is as `caddy fmt` writes
// it (caddy warns on every start otherwise).
func TestCaddyfilesFormatted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.caddyfile"))
	require.NoError(t, err)
	files = append(files, filepath.Join(repoRoot(t), "examples", "Caddyfile"))
	for _, f := range files {
		body := readFile(t, f)
		require.Equal(t, string(caddycf.Format(body)), string(body), "%s is not formatted; run: caddy fmt --overwrite %s", f, f)
	}
}
