package caddyfile

import (
	"bufio"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func systemdDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "examples", "systemd")
}

// unitKeys reads a unit file into section.key -> values.
func unitKeys(t *testing.T, unit string) map[string][]string {
	t.Helper()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "not key=value: %q", line)
		keys[section+"."+k] = append(keys[section+"."+k], v)
	}
	return keys
}

// TestSystemdUnit checks what the operator relies on: reload through the
// admin API, the bind capability, the file limit, the env file with the
// salt, and no --environ (it would log the salt).
func TestSystemdUnit(t *testing.T) {
	unit := string(readFile(t, filepath.Join(systemdDir(t), "caddy.service")))
	k := unitKeys(t, unit)
	one := func(key string) string {
		require.Len(t, k[key], 1, key)
		return k[key][0]
	}
	require.Equal(t, "notify", one("Service.Type"))
	require.Equal(t, "/usr/bin/caddy run --config /etc/caddy/Caddyfile --adapter caddyfile", one("Service.ExecStart"))
	require.True(t, strings.HasPrefix(one("Service.ExecReload"), "/usr/bin/caddy reload --config /etc/caddy/Caddyfile"))
	require.Equal(t, "CAP_NET_BIND_SERVICE", one("Service.AmbientCapabilities"))
	require.Equal(t, "1048576", one("Service.LimitNOFILE"))
	require.Equal(t, "/etc/caddy/caddy.env", one("Service.EnvironmentFile"))
	require.Equal(t, "caddy", one("Service.User"))
	require.Equal(t, "multi-user.target", one("Install.WantedBy"))
	require.NotContains(t, one("Service.ExecStart"), "--environ")
}

// TestSystemdEnvFileAdapts: examples/Caddyfile with the production values
// of caddy.env (6 nodes) adapts, the console probes the S3 port of the
// same node, and the salt stays out of the JSON.
func TestSystemdEnvFileAdapts(t *testing.T) {
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, filepath.Join(systemdDir(t), "caddy.env")))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "not KEY=value: %q", line)
		env[k] = strings.Trim(v, `"`)
	}
	for _, k := range []string{"AFFINITY_SALT", "LISTEN_HOST", "S3_PORT", "CONSOLE_PORT", "MINIO_S3", "MINIO_CONSOLE", "CADDY_ADMIN"} {
		_, ok := env[k]
		require.True(t, ok, "caddy.env lacks %s", k)
		t.Setenv(k, env[k])
	}
	out := string(adapt(t, readFile(t, filepath.Join(repoRoot(t), "examples", "Caddyfile")), "Caddyfile"))
	require.NotContains(t, out, env["AFFINITY_SALT"], "the salt must be read at run time, not baked into the JSON")
	require.Contains(t, out, `"salt":"{env.AFFINITY_SALT}"`)
	require.Contains(t, out, `"listen":[":9000"]`)
	require.Contains(t, out, `"listen":[":9001"]`)
	for i := 1; i <= 6; i++ {
		node := "cluster01-" + string(rune('0'+i)) + ".minio.xunku.in"
		require.Equal(t, 2, strings.Count(out, `"`+node+`:9000"`), "%s:9000: S3 upstream and console probe", node)
		require.Equal(t, 1, strings.Count(out, `"`+node+`:9001"`), "%s:9001: console upstream", node)
	}
}
