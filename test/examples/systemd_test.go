package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSystemdVerify runs `systemd-analyze verify` on the unit (binary and
// env file paths pointed at files that exist here).
func TestSystemdVerify(t *testing.T) {
	bin := tool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	caddy := caddyBin(t)
	env := filepath.Join(dir, "caddy.env")
	require.NoError(t, os.WriteFile(env, readFile(t, filepath.Join(systemdDir(t), "caddy.env")), 0o640))
	unit := string(readFile(t, filepath.Join(systemdDir(t), "caddy.service")))
	unit = strings.ReplaceAll(unit, "/usr/bin/caddy", caddy)
	unit = strings.ReplaceAll(unit, "/etc/caddy/caddy.env", env)
	path := filepath.Join(dir, "caddy.service")
	require.NoError(t, os.WriteFile(path, []byte(unit), 0o644))
	out, err := exec.Command(bin, "verify", path).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warns")
}
