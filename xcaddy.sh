#!/usr/bin/env bash
# xcaddy.sh: build, test, benchmark and demo caddy-minio-lb.
#
#   ./xcaddy.sh demo    build everything, start a 4-node MinIO cluster on
#                       loopback behind the custom Caddy, print the endpoints
#   ./xcaddy.sh test    formatting, vet, staticcheck, the plugin's tests (Go only), then the
#                       end-to-end tests (test/ module), all with -race
#   ./xcaddy.sh build   build ./bin/caddy (Caddy v2.11.9 + this plugin)
#   ./xcaddy.sh bench   Go benchmarks and the load harness, printed as tables
#   ./xcaddy.sh minio   install the pinned MinIO server into the cache
#
# Environment:
#   CADDY_MINIO_LB_CACHE  where the MinIO binary is cached
#                         (default ~/.cache/caddy-minio-lb)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

CADDY_VERSION=v2.11.9
MODULE=github.com/minio-lb/caddy-minio-lb
MINIO_MODULE=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
CACHE=${CADDY_MINIO_LB_CACHE:-$HOME/.cache/caddy-minio-lb}
export MINIO_BIN=${MINIO_BIN:-$CACHE/bin/minio}
export CADDY_BIN=${CADDY_BIN:-$ROOT/bin/caddy}
export PATH=/usr/local/go/bin:$PATH

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'xcaddy.sh: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

# build: xcaddy runs as a tool dependency of the test module (test/go.mod
# `tool`), because `go run xcaddy@version` is refused by the module proxy
# here, and so that the plugin's own go.mod does not carry it. The plugin is
# this working tree, pinned as v0.0.0 so the go command never asks the proxy
# for our module's latest version.
cmd_build() {
  local out=${1:-$ROOT/bin/caddy}
  mkdir -p "$(dirname "$out")"
  if [ -x "$out" ] && [ -z "$(find "$ROOT" -name '*.go' -newer "$out" -not -path '*/bin/*' -not -path "$ROOT/test/*" -print -quit)" ] \
     && [ "$ROOT/go.mod" -ot "$out" ]; then
    log "caddy is up to date: $out"
    return 0
  fi
  log "building Caddy $CADDY_VERSION with $MODULE into $out"
  (cd "$ROOT/test" && XCADDY_SKIP_CLEANUP=0 go tool xcaddy build "$CADDY_VERSION" \
    --with "$MODULE@v0.0.0=$ROOT" \
    --output "$out")
  "$out" list-modules --versions 2>/dev/null | grep -E 'session_affinity|healthready|s3_list_uploads' >&2 || true
}

# minio: the pinned MinIO server, built from the Go module proxy once and
# cached across runs.
cmd_minio() {
  if [ -x "$MINIO_BIN" ]; then
    log "minio is cached: $MINIO_BIN"
    return 0
  fi
  log "installing MinIO server ($MINIO_MODULE) into $(dirname "$MINIO_BIN") (2-3 min)"
  mkdir -p "$(dirname "$MINIO_BIN")"
  GOBIN=$(dirname "$MINIO_BIN") GOFLAGS=-mod=mod go install "$MINIO_MODULE"
}

# apt_install installs the Debian packages given as "command:package"
# pairs whose command is missing; root is needed only when one is missing.
apt_install() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (run as root or install them)"
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# deps: the Debian tools the end-to-end tests drive (awscli, boto3,
# keepalived, systemd-analyze, curl, promtool for the alert rules).
# Installed only when missing.
cmd_deps() {
  local boto=python3-boto3:python3-boto3
  python3 -c 'import boto3' 2>/dev/null && boto=true:true
  apt_install aws:awscli "$boto" keepalived:keepalived systemd-analyze:systemd curl:curl promtool:prometheus
}

# bench_deps: the peers of the load harness, for ./xcaddy.sh bench only.
bench_deps() {
  apt_install nginx:"nginx libnginx-mod-http-lua" haproxy:haproxy
}

# test: the plugin module first (Go alone), then the test module (real
# MinIO, the built caddy, S3 clients). Arguments go to both `go test` runs.
cmd_test() {
  log "gofmt"
  local unformatted
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))
  [ -z "$unformatted" ] || die "gofmt would change: $unformatted"
  log "go vet (plugin module, test module)"
  go vet ./...
  (cd test && go vet ./...)
  # staticcheck, a tool dependency of the test module (test/go.mod), with
  # the checks of staticcheck.conf, on both modules.
  log "staticcheck (plugin module, test module)"
  (cd test && go build -o "$ROOT/bin/staticcheck" honnef.co/go/tools/cmd/staticcheck)
  "$ROOT/bin/staticcheck" ./...
  (cd test && "$ROOT/bin/staticcheck" ./...)
  log "go test: plugin module (once without -race: the allocation tests only build without it)"
  go test -count=1 -timeout 20m "$@" ./...
  log "go test -race: plugin module"
  go test -race -count=1 -timeout 20m "$@" ./...
  cmd_deps
  cmd_minio
  cmd_build
  log "go test -race -p 1: test module (MINIO_BIN=$MINIO_BIN CADDY_BIN=$CADDY_BIN)"
  # -p 1: one package at a time. Several packages start their own 4-node
  # MinIO cluster; on 2 cores, running them side by side starves MinIO
  # (peers marked offline, write quorum lost for seconds) and the failure
  # tests would measure the starvation instead of the proxy.
  (cd test && go test -race -count=1 -p 1 -timeout 40m "$@" ./...)
}

cmd_bench() {
  log "Go benchmarks: session_affinity vs Caddy's own policies"
  go test -run '^$' -bench . -benchmem -count=1 ./sessionaffinity/ "$@"
  log "Go benchmarks: healthready (GetUpstreams; proxy vs static upstreams + Caddy's active checks)"
  go test -run '^$' -bench . -benchmem -benchtime=20000x -count=1 ./healthready/ "$@"
  # The load harness (test/internal/loadbench): ours vs stock Caddy vs
  # nginx vs HAProxy vs direct, fast Go backends and a 4-node MinIO, on
  # loopback only. Flags of the harness go in LOADBENCH_FLAGS
  # (e.g. "-duration 10s -repeat 5").
  bench_deps
  cmd_minio
  cmd_build
  log "the peers' config checks (nginx -t, haproxy -c)"
  (cd test && go test -tags bench -count=1 -run 'Nginx|HAProxy' ./internal/loadbench/)
  log "load harness: results also go to $ROOT/tmp/bench-results/"
  (cd test && go build -o "$ROOT/bin/loadbench" ./internal/loadbench/cmd/loadbench)
  LOADBENCH_COMMAND="./xcaddy.sh bench${LOADBENCH_FLAGS:+ with LOADBENCH_FLAGS=\"$LOADBENCH_FLAGS\"}" \
    "$ROOT/bin/loadbench" -caddy "$CADDY_BIN" -out "$ROOT/tmp/bench-results" ${LOADBENCH_FLAGS:-}
}

cmd_demo() {
  # The demo itself is Go (test/internal/demo): it starts the MinIO cluster and
  # Caddy and stops both on Ctrl-C/SIGTERM. It runs as a built binary under
  # exec, so a signal sent to this script reaches it directly.
  # Options: --check (verify and exit); env DEMO_* (docs/demo.md).
  cmd_minio
  cmd_build
  log "building the demo runner"
  (cd test && go build -o "$ROOT/bin/demo" ./internal/demo/cmd/demo)
  exec "$ROOT/bin/demo" "$@"
}

case "${1:-help}" in
  build) shift; cmd_build "$@" ;;
  test)  shift; cmd_test "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  demo)  shift; cmd_demo "$@" ;;
  minio) shift; cmd_minio "$@" ;;
  deps)  shift; cmd_deps "$@" ;;
  help|-h|--help) usage ;;
  *) usage; die "unknown command: $1" ;;
esac
