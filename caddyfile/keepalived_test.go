package caddyfile

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func keepalivedDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "examples", "keepalived")
}

// vrrpInstance is what the active-active design needs of one instance.
type vrrpInstance struct {
	state, vrid, priority, vip string
	nopreempt, tracked         bool
}

// parseInstances reads the vrrp_instance blocks of a keepalived.conf
// (flat: one level of nested blocks, "!" and "#" comments).
func parseInstances(t *testing.T, conf string) map[string]vrrpInstance {
	t.Helper()
	out := map[string]vrrpInstance{}
	var cur string
	var inst vrrpInstance
	var sub string
	depth := 0
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.IndexAny(line, "!#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case depth == 0 && f[0] == "vrrp_instance":
			cur, inst = f[1], vrrpInstance{}
		case f[len(f)-1] == "{" && depth == 1:
			sub = f[0]
		case f[0] == "}":
			if depth == 1 && cur != "" {
				out[cur] = inst
				cur = ""
			}
			sub = ""
		case cur != "" && depth == 1:
			switch f[0] {
			case "state":
				inst.state = f[1]
			case "virtual_router_id":
				inst.vrid = f[1]
			case "priority":
				inst.priority = f[1]
			case "nopreempt":
				inst.nopreempt = true
			}
		case cur != "" && depth == 2 && sub == "virtual_ipaddress":
			inst.vip = f[0]
		case cur != "" && depth == 2 && sub == "track_script" && f[0] == "chk_caddy":
			inst.tracked = true
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
	}
	require.Zero(t, depth, "unbalanced braces")
	return out
}

// TestKeepalivedActiveActive: each node is MASTER of one VIP and BACKUP of
// the other, the VIPs, router ids and priorities mirror each other, and
// every instance tracks the Caddy readiness check.
func TestKeepalivedActiveActive(t *testing.T) {
	a := parseInstances(t, string(readFile(t, filepath.Join(keepalivedDir(t), "keepalived-node-a.conf"))))
	b := parseInstances(t, string(readFile(t, filepath.Join(keepalivedDir(t), "keepalived-node-b.conf"))))
	require.Len(t, a, 2)
	require.Len(t, b, 2)
	vips := map[string]bool{}
	masters := map[string]string{}
	for name, ia := range a {
		ib, ok := b[name]
		require.True(t, ok, "instance %s on node A only", name)
		require.Equal(t, ia.vrid, ib.vrid, "%s: router id", name)
		require.Equal(t, ia.vip, ib.vip, "%s: VIP", name)
		require.NotEqual(t, ia.state, ib.state, "%s: one MASTER, one BACKUP", name)
		require.True(t, ia.tracked && ib.tracked, "%s: tracks chk_caddy on both nodes", name)
		for node, in := range map[string]vrrpInstance{"A": ia, "B": ib} {
			if in.state == "MASTER" {
				require.Equal(t, "100", in.priority)
				require.False(t, in.nopreempt, "%s: the MASTER takes its VIP back", name)
				masters[name] = node
			} else {
				require.Equal(t, "BACKUP", in.state)
				require.Equal(t, "50", in.priority)
				require.True(t, in.nopreempt, "%s: the BACKUP does not preempt", name)
			}
		}
		vips[ia.vip] = true
	}
	require.Len(t, vips, 2, "two VIPs")
	require.ElementsMatch(t, []string{"A", "B"}, []string{masters["lb-minio_1"], masters["lb-minio_2"]}, "each node masters one VIP")

	for _, n := range []string{"a", "b"} {
		conf := string(readFile(t, filepath.Join(keepalivedDir(t), "keepalived-node-"+n+".conf")))
		require.Contains(t, conf, `script "/etc/keepalived/check_caddy.sh"`)
		require.NotContains(t, conf, "killall")
	}
}
