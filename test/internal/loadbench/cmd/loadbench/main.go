// Command loadbench is the load harness of `./xcaddy.sh bench`: it compares
// our Caddy, stock Caddy, nginx, HAProxy and direct access on loopback and
// prints Markdown tables (also written to -out).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/loadbench"
)

func main() {
	var opt loadbench.Options
	var targets, out string
	var timeout time.Duration
	flag.StringVar(&opt.CaddyBin, "caddy", os.Getenv("CADDY_BIN"), "our Caddy build (default $CADDY_BIN)")
	flag.DurationVar(&opt.Duration, "duration", 3*time.Second, "time per cell and repetition")
	flag.IntVar(&opt.Repeat, "repeat", 3, "repetitions of every cell (interleaved; medians reported)")
	flag.IntVar(&opt.MaxRequests, "max-requests", 500000, "request bound per cell and repetition")
	flag.IntVar(&opt.Conc1K, "c1k", 64, "connections of the 1 KiB GET")
	flag.IntVar(&opt.ConcBig, "cbig", 8, "connections of the 1 MiB GET/PUT")
	flag.IntVar(&opt.ConcMP, "cmp", 4, "connections of the multipart upload")
	flag.IntVar(&opt.HashKeys, "hash-keys", 20000, "session ids of the hash quality check")
	flag.BoolVar(&opt.NoMinIO, "no-minio", false, "skip the MinIO workloads")
	flag.BoolVar(&opt.NoHeavy, "no-heavy", false, "skip the heavy-client cell")
	heavyMiB := flag.Int64("heavy-bw", 100, "per-node link cap of the heavy-client cell, MiB/s each way")
	flag.BoolVar(&opt.NoFailover, "no-failover", false, "skip the failover timelines")
	flag.DurationVar(&opt.Failover.Duration, "failover-duration", 20*time.Second, "length of each failover timeline (kill at 25%, restart at 60%)")
	flag.IntVar(&opt.Failover.Rate, "failover-rate", 500, "requests per second of the failover timeline")
	flag.StringVar(&targets, "targets", "ours,caddy-stock,nginx,haproxy,direct", "comma-separated targets")
	var faultTargets string
	flag.BoolVar(&opt.NoFaults, "no-faults", false, "skip the slow/frozen node cells")
	flag.BoolVar(&opt.FaultsOnly, "faults-only", false, "run only the slow/frozen node cells")
	flag.IntVar(&opt.Faults.Rate, "fault-rate", loadbench.DefaultFaults.Rate, "requests per second of each fault cell (open loop)")
	flag.DurationVar(&opt.Faults.Cell, "fault-cell", loadbench.DefaultFaults.Cell, "length of each fault cell (the fault starts 3s in and lasts 8s; a slow node is slow throughout)")
	flag.IntVar(&opt.Faults.Repeat, "fault-repeat", loadbench.DefaultFaults.Repeat, "repetitions of every fault cell")
	flag.StringVar(&faultTargets, "fault-targets", "ours,ours-hedge-50ms,ours-hedge-off,caddy-stock,nginx,haproxy", "comma-separated targets of the fault cells")
	flag.StringVar(&out, "out", "tmp/bench-results", "directory for <timestamp>.md")
	flag.DurationVar(&timeout, "timeout", 30*time.Minute, "bound of the whole run")
	flag.Parse()
	opt.HeavyBW = *heavyMiB << 20

	fd := opt.Failover.Duration
	opt.Failover = loadbench.FailoverSpec{Rate: opt.Failover.Rate, Duration: fd, KillAt: fd / 4, RestartAt: fd * 3 / 5,
		Sessions: loadbench.DefaultFailover.Sessions, Backends: loadbench.DefaultFailover.Backends}
	for _, t := range strings.Split(targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			opt.Kinds = append(opt.Kinds, loadbench.Kind(t))
		}
	}
	def := loadbench.DefaultFaults
	opt.Faults = loadbench.FaultSpec{Rate: opt.Faults.Rate, Cell: opt.Faults.Cell, Repeat: opt.Faults.Repeat,
		FaultAt: def.FaultAt, FaultFor: def.FaultFor, Delay: def.Delay, TryTimeout: def.TryTimeout}
	if opt.Faults.Cell < def.FaultAt+def.FaultFor {
		fmt.Fprintf(os.Stderr, "loadbench: -fault-cell %s: want at least %s (the fault starts at %s and lasts %s)\n", opt.Faults.Cell, def.FaultAt+def.FaultFor, def.FaultAt, def.FaultFor)
		os.Exit(2)
	}
	for _, t := range strings.Split(faultTargets, ",") {
		k := loadbench.Kind(strings.TrimSpace(t))
		if k == "" {
			continue
		}
		known := false
		for _, f := range loadbench.FaultKinds {
			known = known || f == k
		}
		if !known {
			fmt.Fprintf(os.Stderr, "loadbench: -fault-targets: unknown target %q (want ours, ours-hedge-50ms, ours-hedge-off, caddy-stock, nginx, haproxy)\n", k)
			os.Exit(2)
		}
		opt.FaultKinds = append(opt.FaultKinds, k)
	}
	for _, k := range opt.Kinds {
		switch k {
		case loadbench.KindOurs, loadbench.KindCaddy, loadbench.KindNginx, loadbench.KindHAProxy, loadbench.KindDirect:
		default:
			fmt.Fprintf(os.Stderr, "loadbench: -targets: unknown target %q (want ours, caddy-stock, nginx, haproxy, direct)\n", k)
			os.Exit(2)
		}
	}
	opt.Command = strings.Join(os.Args, " ")
	if c := os.Getenv("LOADBENCH_COMMAND"); c != "" {
		opt.Command = c
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := loadbench.Run(ctx, opt)
	md := rep.Markdown()
	fmt.Print(md)
	if mkErr := os.MkdirAll(out, 0o755); mkErr == nil {
		path := filepath.Join(out, rep.Started.UTC().Format("20060102-150405")+".md")
		if wErr := os.WriteFile(path, []byte(md), 0o644); wErr == nil {
			fmt.Fprintf(os.Stderr, "loadbench: results written to %s\n", path)
		} else {
			fmt.Fprintf(os.Stderr, "loadbench: writing results: %v\n", wErr)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadbench: %v\n", err)
		os.Exit(1)
	}
}
