package healthready

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Drains are kept per upstream address for the life of the process, like
// passive ejections: `caddy reload` keeps them, and every pool that routes
// to the address sees them. A drained node gets no new requests; requests
// in flight finish.
var drains struct {
	sync.Mutex
	byAddr map[string]drainMark
}

// drainMark records who drained an address and when.
type drainMark struct {
	Since time.Time
	By    string
}

// drainOf returns the drain of addr, if any.
func drainOf(addr string) (drainMark, bool) {
	drains.Lock()
	defer drains.Unlock()
	m, ok := drains.byAddr[addr]
	return m, ok
}

// ErrNoSuchNode is returned when a drain names no upstream of any pool.
var ErrNoSuchNode = errors.New("no such node")

// ErrQuorum is returned when MinIO says taking the node down would lose
// quorum or drives are healing; force overrides it.
var ErrQuorum = errors.New("MinIO refuses maintenance")

// DrainTarget is one upstream a drain request names.
type DrainTarget struct {
	// Pool is the healthready pool's name.
	Pool string `json:"pool"`
	// Upstream is the node's dial address in the pool.
	Upstream string `json:"upstream"`
	// Probe is the address probed for it (where maintenance is asked).
	Probe string `json:"probe"`
	// Drained is true while the node is drained.
	Drained bool `json:"drained"`
	// Since is when it was drained.
	Since time.Time `json:"since,omitzero"`
	// By says who or what asked.
	By string `json:"by,omitempty"`
	// InFlight counts requests still in flight to the node (Caddy's count,
	// every site that proxies to the address).
	InFlight int `json:"in_flight"`
	// SafeToStop is true when the node is drained and nothing is in flight.
	SafeToStop bool `json:"safe_to_stop"`
}

// Maintenance is MinIO's answer to /minio/health/cluster?maintenance=true
// on the node: whether the cluster keeps quorum without it.
type Maintenance struct {
	// Node is the probe address asked.
	Node string `json:"node"`
	// Status is the HTTP status (200 safe, 412 not safe); 0 if unreachable.
	Status int `json:"status"`
	// OK is true when MinIO says the node may go down.
	OK bool `json:"ok"`
	// WriteQuorum is MinIO's X-Minio-Write-Quorum.
	WriteQuorum int `json:"write_quorum,omitempty"`
	// HealingDrives is MinIO's X-Minio-Healing-Drives.
	HealingDrives int `json:"healing_drives,omitempty"`
	// Reason says what MinIO's answer means.
	Reason string `json:"reason"`
	// Peer is true for the check of another node: whether, in its
	// own view, the cluster can lose one more node (a peer that has not
	// reconnected to a node restarted a moment ago cannot). A peer that
	// does not answer is not counted (Status 0).
	Peer bool `json:"peer,omitempty"`
}

// matchTargets finds the upstreams a drain names: node is a host:port (an
// upstream address or the address probed for one, so draining a node's S3
// address drains its console too) or a host (every upstream on that host);
// pool, if set, restricts to one pool.
func matchTargets(node, pool string) []*HealthReady {
	var out []*HealthReady
	for _, h := range currentPools(pool) {
		for _, n := range h.nodes {
			if nodeMatches(n, node) {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

func nodeMatches(n *node, want string) bool {
	if want == n.dial || want == n.addr || want == n.spec.Addr {
		return true
	}
	if _, _, err := net.SplitHostPort(want); err == nil {
		return false
	}
	host, _, _ := net.SplitHostPort(n.addr)
	return host == want
}

// DrainNodes drains every upstream that node names (see matchTargets),
// after asking MinIO whether the cluster can do without it, unless force.
// It returns the upstreams and MinIO's answer for each distinct probe
// address. With a refusal nothing is drained and the error wraps ErrQuorum.
func DrainNodes(ctx context.Context, node, pool, by string, force bool) ([]DrainTarget, []Maintenance, error) {
	pools := matchTargets(node, pool)
	if len(pools) == 0 {
		return nil, nil, fmt.Errorf("%w: %q is not an upstream (or upstream host) of %s", ErrNoSuchNode, node, poolsText(pool))
	}
	var checks []Maintenance
	asked := map[string]bool{}
	for _, h := range pools {
		for _, n := range h.nodes {
			if !nodeMatches(n, node) || asked[n.spec.Addr] {
				continue
			}
			asked[n.spec.Addr] = true
			checks = append(checks, maintenanceCheck(ctx, n.spec))
		}
	}
	if !force {
		for _, c := range checks {
			if !c.OK {
				return nil, checks, fmt.Errorf("%w for %s: %s (drain with force to override)", ErrQuorum, c.Node, c.Reason)
			}
		}
		// MinIO's maintenance answer counts the drives online in the asked
		// node's own view. A peer that has not reconnected yet to a node
		// restarted a moment ago sees one node fewer: it would lose write
		// quorum when this node stops (seen: 503 SlowDownWrite on PUTs
		// right after the next drain of a rolling restart). Every other
		// node that answers must be able to lose one node's drives in its
		// own view, which is what maintenance=true asks of it.
		for _, spec := range peerSpecs(pools, node, asked) {
			c := maintenanceCheck(ctx, spec)
			c.Peer = true
			if !c.OK && c.Status != 0 {
				c.Reason = "in this node's own view the cluster cannot lose one more node: it is starting, has not reconnected to every peer yet, or drives are healing (" + c.Reason + ")"
			}
			checks = append(checks, c)
			if !c.OK && c.Status != 0 {
				return nil, checks, fmt.Errorf("%w: MinIO on %s: %s; try again in a few seconds (drain with force to override)", ErrQuorum, c.Node, c.Reason)
			}
		}
	}
	now := time.Now()
	drains.Lock()
	if drains.byAddr == nil {
		drains.byAddr = make(map[string]drainMark)
	}
	for _, h := range pools {
		for _, n := range h.nodes {
			if nodeMatches(n, node) {
				if _, ok := drains.byAddr[n.addr]; !ok {
					drains.byAddr[n.addr] = drainMark{Since: now, By: by}
				}
			}
		}
	}
	drains.Unlock()
	for _, h := range pools {
		h.logger.Warn("node drained", zap.String("pool", h.Name), zap.String("node", node),
			zap.String("by", by), zap.Bool("force", force))
		h.evaluate(false)
	}
	return DrainStatus(node, pool), checks, nil
}

// peerSpecs are the probe targets of the other nodes of pools (not named
// by node, not asked yet), each once. Nodes that are not ready are asked
// too: a node still starting or reconnecting after a restart answers
// 412 or 503 and the drain waits for it; one that does not answer at all
// (down) is left to the target's own check, which counts its drives
// offline.
func peerSpecs(pools []*HealthReady, node string, asked map[string]bool) []probeSpec {
	var out []probeSpec
	for _, h := range pools {
		for _, n := range h.nodes {
			if nodeMatches(n, node) || asked[n.spec.Addr] {
				continue
			}
			asked[n.spec.Addr] = true
			out = append(out, n.spec)
		}
	}
	return out
}

// UndrainNodes ends the drain of every upstream node names.
func UndrainNodes(node, pool, by string) ([]DrainTarget, error) {
	pools := matchTargets(node, pool)
	if len(pools) == 0 {
		return nil, fmt.Errorf("%w: %q is not an upstream (or upstream host) of %s", ErrNoSuchNode, node, poolsText(pool))
	}
	now := time.Now()
	drains.Lock()
	for _, h := range pools {
		for _, n := range h.nodes {
			if !nodeMatches(n, node) {
				continue
			}
			if _, ok := drains.byAddr[n.addr]; ok {
				// Routable again once rise probes started after the
				// undrain have passed; the first runs at once.
				n.passive.holdUntilProbed(now, fmt.Sprintf("undrained: waiting for %d passing probe(s)", h.Rise))
				n.probe.requirePeers()
				n.probe.probeNow()
			}
			delete(drains.byAddr, n.addr)
		}
	}
	drains.Unlock()
	for _, h := range pools {
		h.logger.Info("node undrained", zap.String("pool", h.Name), zap.String("node", node), zap.String("by", by))
		h.evaluate(false)
	}
	return DrainStatus(node, pool), nil
}

// DrainStatus lists the upstreams node names (every drained upstream when
// node is ""), with their drain and in-flight count.
func DrainStatus(node, pool string) []DrainTarget {
	hosts := caddyHosts()
	var out []DrainTarget
	for _, h := range currentPools(pool) {
		for _, n := range h.nodes {
			m, drained := drainOf(n.addr)
			if node == "" && !drained || node != "" && !nodeMatches(n, node) {
				continue
			}
			t := DrainTarget{Pool: h.Name, Upstream: n.dial, Probe: n.spec.Addr, Drained: drained,
				Since: m.Since, By: m.By, InFlight: hosts[n.dial].InFlight}
			t.SafeToStop = drained && t.InFlight == 0
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pool != out[j].Pool {
			return out[i].Pool < out[j].Pool
		}
		return out[i].Upstream < out[j].Upstream
	})
	return out
}

func poolsText(pool string) string {
	if pool == "" {
		return "any healthready pool"
	}
	return "pool " + strconv.Quote(pool)
}

// maintenanceCheck asks MinIO on the probe target whether it may go down:
// GET /minio/health/cluster?maintenance=true answers 200 when the cluster
// keeps quorum without this node and 412 when it would not, or drives are
// healing (MinIO's ClusterCheckHandler).
func maintenanceCheck(ctx context.Context, spec probeSpec) Maintenance {
	m := Maintenance{Node: spec.Addr}
	ctx, cancel := context.WithTimeout(ctx, max(spec.Timeout, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.Scheme+"://"+spec.Addr+"/minio/health/cluster?maintenance=true", nil)
	if err != nil {
		m.Reason = err.Error()
		return m
	}
	if spec.Host != "" {
		req.Host = spec.Host
	}
	resp, err := maintenanceClient(spec).Do(req)
	if err != nil {
		m.Reason = "cannot ask the node: " + shortErr(err)
		return m
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	m.Status = resp.StatusCode
	m.WriteQuorum, _ = strconv.Atoi(resp.Header.Get("X-Minio-Write-Quorum"))
	m.HealingDrives, _ = strconv.Atoi(resp.Header.Get("X-Minio-Healing-Drives"))
	switch resp.StatusCode {
	case http.StatusOK:
		m.OK, m.Reason = true, "the cluster keeps quorum without this node"
	case http.StatusPreconditionFailed:
		m.Reason = "taking this node down would lose quorum"
		if m.HealingDrives > 0 {
			m.Reason = fmt.Sprintf("%d drive(s) are healing; taking this node down now risks quorum", m.HealingDrives)
		}
		if m.WriteQuorum > 0 {
			m.Reason += fmt.Sprintf(" (write quorum %d)", m.WriteQuorum)
		}
	default:
		m.Reason = fmt.Sprintf("unexpected answer %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return m
}

// maintenanceClient asks one node as its probes do (scheme, TLS settings),
// on a fresh connection.
func maintenanceClient(spec probeSpec) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	if spec.Scheme == "https" {
		tr.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: spec.TLSInsecure, //nolint:gosec // the operator's choice for the probes
			ServerName:         spec.TLSServerName,
		}
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
