// Package caddyfile holds the Caddyfile contract of caddy-minio-lb: golden
// tests that adapt every example and every option of the modules'
// directives (session_affinity, healthready, healthready_status,
// s3_header_case, s3_list_uploads) to committed JSON, the error messages of
// bad input, and the checks that examples/Caddyfile, examples/caddy.json
// and the keepalived and systemd examples are accepted by the tools that
// read them.
//
// The modules register their own directives and directive order in their
// init functions; this package has no glue of its own and exports nothing.
// Regenerate the golden files with:
//
//	go test ./caddyfile/ -run Golden -update
package caddyfile
