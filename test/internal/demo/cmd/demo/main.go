// Command demo is `./xcaddy.sh demo`: see test/internal/demo and docs/demo.md.
//
//	demo           run until Ctrl-C / SIGTERM (or DEMO_EXIT_AFTER)
//	demo --check   start everything, verify S3 through Caddy, exit 0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/minio-lb/caddy-minio-lb/test/internal/demo"
)

func main() {
	checkOnly := flag.Bool("check", false, "start everything, verify one S3 put/get through Caddy and the status page, print the endpoints, exit")
	flag.Parse()
	cfg, err := demo.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Check = *checkOnly
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Println("==> stopped cleanly")
}
