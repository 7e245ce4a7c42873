// Command testcaddy is Caddy with the standard modules and every
// caddy-minio-lb module: the same set of modules `./xcaddy.sh build` puts into
// bin/caddy. The transparency tests build it only when CADDY_BIN is not set,
// so `go test ./test/transparency/` works without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/minio-lb/caddy-minio-lb"
	// s3headers is listed here too until the root imports.go has it.
	_ "github.com/minio-lb/caddy-minio-lb/s3headers"
)

func main() {
	caddycmd.Main()
}
