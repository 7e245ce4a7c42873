// Package caddyproc runs the custom caddy binary as a child process for
// end-to-end tests and the demo.
//
// The binary is $CADDY_BIN, default <repo>/bin/caddy, built by
// `./xcaddy.sh build`. When it is missing, Start returns an error (StartT
// fails the test) naming that command. Nothing skips.
//
//	p := caddyproc.StartT(t, caddyproc.Options{Caddyfile: cf, Env: env})
//	p.AdminAddr()                         // "127.0.0.1:PORT" (a free port, also $CADDY_ADMIN)
//	p.Reload(ctx, jsonOrCaddyfile, "caddyfile")  // POST /load
//	entries, _ := p.AccessLog()           // JSON access log lines from stdout
//	p.Stop()                              // SIGTERM, SIGKILL after 10s
//
// Start writes the config into the process directory, runs
// `caddy run --config <file> --adapter <adapter>` with CADDY_ADMIN set to the
// admin address (a Caddyfile without an `admin` option uses it, one with
// `admin {$CADDY_ADMIN}` too), XDG_CONFIG_HOME/XDG_DATA_HOME inside the
// process directory (no autosave into $HOME), and waits until the admin API
// answers and every listener of every HTTP server in the running config
// accepts connections. stdout goes to <Dir>/caddy.stdout.log (where a
// `log { output stdout format json }` access log lands), stderr to
// <Dir>/caddy.stderr.log (Caddy's own log).
//
// ExampleEnv gives the environment examples/Caddyfile reads, for a
// miniocluster.Cluster and chosen ports.
package caddyproc
