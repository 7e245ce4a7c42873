#!/bin/sh
# check_caddy.sh: keepalived's health check of this Caddy node.
#
# Healthy means Caddy answers AND at least one MinIO node is ready from this
# proxy's point of view: the readiness answer of the healthready status page
# (200 "ready", else 503 with the reason). The original checked
# `killall -0 nginx`, which stays green while nginx is up but cannot reach
# any MinIO node, or hangs.
#
# Environment (keepalived passes none; edit the defaults or wrap the script):
#   READY_URL   readiness URL; the status page only answers loopback and the
#               ops networks, so ask through loopback.
#   TIMEOUT     seconds curl may take in all (keep it below the vrrp_script
#               timeout).
READY_URL=${READY_URL:-http://127.0.0.1:9000/upstream/health/ready}
TIMEOUT=${TIMEOUT:-2}

exec curl --silent --show-error --fail --output /dev/null \
	--max-time "$TIMEOUT" --connect-timeout 1 --noproxy '*' \
	"$READY_URL"
