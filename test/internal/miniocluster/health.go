package miniocluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// probeClient opens a fresh connection per probe: a pooled connection to a
// killed or restarted node would only hide what the node answers now.
var probeClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// ProbeResult is one answer of a node's health endpoint.
type ProbeResult struct {
	Status int
	Header http.Header
}

// Offline reports the header MinIO sets while its object layer is not
// initialised, even on a 200 of /minio/health/ready.
func (p ProbeResult) Offline() bool {
	return strings.EqualFold(p.Header.Get("X-Minio-Server-Status"), "offline")
}

// Probe sends GET path (e.g. "/minio/health/ready") to the node's S3 port.
func (n *Node) Probe(ctx context.Context, path string) (ProbeResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.S3Addr()+path, nil)
	if err != nil {
		return ProbeResult{}, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return ProbeResult{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return ProbeResult{Status: resp.StatusCode, Header: resp.Header}, nil
}

// Ready probes the node once: ready is 200 without the offline header, and
// the cluster endpoint (write quorum) answers 200. The reason says why not.
func (n *Node) Ready(ctx context.Context) (bool, string) {
	r, err := n.Probe(ctx, "/minio/health/ready")
	switch {
	case err != nil:
		return false, "ready: " + err.Error()
	case r.Status != http.StatusOK:
		return false, fmt.Sprintf("ready: status %d", r.Status)
	case r.Offline():
		return false, "ready: 200 with X-Minio-Server-Status: offline"
	}
	c, err := n.Probe(ctx, "/minio/health/cluster")
	switch {
	case err != nil:
		return false, "cluster: " + err.Error()
	case c.Status != http.StatusOK:
		return false, fmt.Sprintf("cluster: status %d", c.Status)
	}
	return true, ""
}

// WaitReady polls the node until it is Ready, its process exits, or ctx ends
// (Options.ReadyTimeout when ctx has no deadline). Errors carry the log tail.
func (n *Node) WaitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.c.opt.ReadyTimeout)
		defer cancel()
	}
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	reason := "not probed yet"
	for {
		if dead, err := n.exited(); dead {
			return fmt.Errorf("miniocluster: node %d (%s) exited while waiting for readiness: %v\n--- %s (tail)\n%s",
				n.index+1, n.S3Addr(), err, n.LogPath(), n.LogTail(30))
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, why := n.Ready(pctx)
		cancel()
		if ok {
			return nil
		}
		reason = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("miniocluster: node %d (%s) not ready after %s (last: %s): %w\n--- %s (tail)\n%s",
				n.index+1, n.S3Addr(), time.Since(start).Round(time.Millisecond), reason, ctx.Err(), n.LogPath(), n.LogTail(30))
		case <-tick.C:
		}
	}
}
