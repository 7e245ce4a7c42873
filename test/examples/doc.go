// Package examples checks the files in examples/ with the real tools they
// are written for: the custom caddy binary (`caddy validate`, `caddy adapt`,
// list-modules), keepalived (`keepalived -t`), systemd (`systemd-analyze
// verify`), curl (the keepalived check script) and promtool (the scrape
// config, the alert rules and their unit tests, the metric names the
// Grafana dashboard and the rules use against a running caddy's /metrics,
// and the metrics' naming). `./xcaddy.sh test`
// installs every one of them; a missing tool fails the test with the command
// that installs it. The structural checks of the same files that need Go
// only live in the plugin module's caddyfile package.
package examples
