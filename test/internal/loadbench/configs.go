package loadbench

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Site is one listener of a proxy and the upstreams behind it.
type Site struct {
	Listen    string   // "127.0.0.1:port"
	Upstreams []string // "127.0.0.1:port" each
}

// Salt is the fingerprint salt every affinity-capable peer uses.
const Salt = "loadbench-salt"

// caddyGlobal mirrors examples/Caddyfile's global options, minus the admin
// endpoint (several Caddys run side by side) and minus `metrics`, which
// neither nginx nor HAProxy pay for here; both Caddys get the same block.
const caddyGlobal = `{
	admin off
	persist_config off
	servers {
		timeouts {
			read_body 0
		}
	}
}
`

// proxyTail is what both Caddys share after the upstreams and the policy,
// taken from examples/Caddyfile.
const caddyProxyTail = `		lb_retries 2
		lb_retry_match {
			method GET HEAD OPTIONS
		}
		flush_interval -1
		request_buffers 0
		header_up X-Real-IP {remote_host}
		transport http {
			keepalive 60s
			keepalive_idle_conns_per_host 32
			expect_continue_timeout 1s
		}
`

// writeCaddySite opens a site on listen's port for any Host, bound to
// listen's address only (a site address alone would bind every interface
// and add a host matcher).
func writeCaddySite(b *strings.Builder, listen string) {
	host, port, _ := strings.Cut(listen, ":")
	fmt.Fprintf(b, "\nhttp://:%s {\n\tbind %s\n", port, host)
}

// OursCaddyfile is target (a): examples/Caddyfile's S3 site with
// `dynamic healthready` and `lb_policy session_affinity` with its key
// chain (sessionid, multipart by object, uploadid, object, fingerprint).
func OursCaddyfile(sites []Site) string {
	var b strings.Builder
	b.WriteString(caddyGlobal)
	for _, s := range sites {
		writeCaddySite(&b, s.Listen)
		b.WriteString("\treverse_proxy {\n")
		fmt.Fprintf(&b, "\t\tdynamic healthready %s {\n", strings.Join(s.Upstreams, " "))
		b.WriteString(`			path /minio/health/ready
			interval 3s
			timeout 1s
			rise 3
			fall 3
			concurrency 10
			passive_fails 1
			passive_window 30s
		}
		lb_policy session_affinity {
			query sessionid
			s3_multipart object
			query uploadid
			s3_object
			fingerprint
			salt ` + Salt + `
		}
`)
		b.WriteString(caddyProxyTail)
		b.WriteString("\t}\n}\n")
	}
	return b.String()
}

// StockCaddyfile is target (b): the same site with static upstreams,
// Caddy's own active and passive health checks with the seed's knobs, and
// `lb_policy query sessionid` (random when the query has no sessionid).
func StockCaddyfile(sites []Site) string {
	var b strings.Builder
	b.WriteString(caddyGlobal)
	for _, s := range sites {
		writeCaddySite(&b, s.Listen)
		fmt.Fprintf(&b, "\treverse_proxy %s {\n", strings.Join(s.Upstreams, " "))
		b.WriteString(`		lb_policy query sessionid
		health_uri /minio/health/ready
		health_interval 3s
		health_timeout 1s
		health_passes 3
		health_fails 3
		max_fails 1
		fail_duration 30s
`)
		b.WriteString(caddyProxyTail)
		b.WriteString("\t}\n}\n")
	}
	return b.String()
}

// NginxConf is target (c): the seed's OpenResty site on Debian's nginx with
// the Lua module. Kept from the seed: `hash $arg_sessionid consistent`, the
// set_by_lua key chain (sessionid, sessionId, uploadid, uploadId, else
// md5 of ip+UA+Accept-Language+salt), the rewrite_by_lua that puts the key
// into the query the hash reads, proxy_pass ...$request_uri,
// proxy_next_upstream, keepalive 32, no buffering, unlimited bodies,
// HTTP/1.1 upstream, the X-Real-IP/X-Forwarded-* headers and the
// X-Session-ID response header. Changed: it runs in dir (pid, logs, temp
// files), in the foreground, with access logs off (as for every peer); the
// seed's resty.md5+resty.string (lua-resty-string, not in Debian) is
// ngx.md5 of the same string, which is the same hex digest; and
// lua-resty-upstream-healthcheck (not in Debian) is missing, so nginx has
// only its passive checks (max_fails=1 fail_timeout=10s, the defaults).
func NginxConf(dir string, sites []Site) string {
	var b strings.Builder
	fmt.Fprintf(&b, `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;

worker_processes auto;
daemon off;
pid %[1]s;
error_log %[2]s warn;

events {
    worker_connections 10240;
}

http {
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60;
    keepalive_requests 100000;
`, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"), dir)
	for i, s := range sites {
		fmt.Fprintf(&b, "\n    upstream backend_%d {\n        hash $arg_sessionid consistent;\n", i)
		for _, u := range s.Upstreams {
			fmt.Fprintf(&b, "        server %s;\n", u)
		}
		b.WriteString("        keepalive 32;\n    }\n")
		fmt.Fprintf(&b, `
    server {
        listen %s;
        server_name _;
        ignore_invalid_headers off;
        client_max_body_size 0;
        proxy_buffering off;
        proxy_request_buffering off;

        set_by_lua_block $sessionid {
            if ngx.var.arg_sessionid then
               return ngx.var.arg_sessionid
            elseif ngx.var.arg_sessionId then
               return ngx.var.arg_sessionId
            end
            if ngx.var.arg_uploadid then
               return ngx.var.arg_uploadid
            elseif ngx.var.arg_uploadId then
               return ngx.var.arg_uploadId
            end
            local salt_key = "%s"
            local client_ip = ngx.var.remote_addr or ""
            local user_agent = ngx.var.http_user_agent or ""
            local accept_language = ngx.var.http_accept_language or ""
            local client_fingerprint = ngx.md5(client_ip .. user_agent .. accept_language .. salt_key)
            return ngx.md5(client_fingerprint)
        }

        rewrite_by_lua_block {
            local args = ngx.req.get_uri_args()
            if not args.sessionid then
                local new_args = ngx.req.get_uri_args() or {}
                new_args.sessionid = ngx.var.sessionid
                ngx.req.set_uri_args(new_args)
            end
        }

        location / {
            add_header X-Session-ID $arg_sessionid;
            proxy_pass http://backend_%d$request_uri;
            proxy_next_upstream error timeout http_500 http_502 http_503 http_504;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 300;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            chunked_transfer_encoding off;
        }
    }
`, s.Listen, Salt, i)
	}
	b.WriteString("}\n")
	return b.String()
}

// HAProxyConf is target (d): url_param hashing on a consistent ring, HTTP
// health checks of the ready endpoint with the seed's interval/rise/fall,
// retries with redispatch on the same errors nginx retries.
func HAProxyConf(sites []Site) string {
	var b strings.Builder
	b.WriteString(`global
    nbthread 2
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 60s
    option http-keep-alive
    option forwardfor
    retries 2
    option redispatch
    retry-on conn-failure empty-response response-timeout 500 502 503 504
`)
	for i, s := range sites {
		fmt.Fprintf(&b, `
frontend fe_%[1]d
    bind %[2]s
    http-request set-header X-Real-IP %%[src]
    default_backend be_%[1]d

backend be_%[1]d
    balance url_param sessionid
    hash-type consistent
    option httpchk GET /minio/health/ready
    http-check expect status 200
    default-server check inter 3s fall 3 rise 3
`, i, s.Listen)
		for j, u := range s.Upstreams {
			fmt.Fprintf(&b, "    server n%d %s\n", j+1, u)
		}
	}
	return b.String()
}

// caddyDuration writes d as a Caddyfile duration ("5s", "200ms").
func caddyDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// OursFaultCaddyfile is target (a) of the fault cells: the S3 site of
// examples/Caddyfile with what it ships against slow, busy and frozen
// nodes: the minio transport (try_timeout, hedge, unsent retries, busy
// handling), lb_retries 6 with the status-code retry of reads, the hold
// and busy_window of healthready. hedge is "adaptive" (the example), a
// duration or "off".
func OursFaultCaddyfile(sites []Site, hedge string, tryTimeout time.Duration) string {
	var b strings.Builder
	b.WriteString(caddyGlobal)
	for _, s := range sites {
		writeCaddySite(&b, s.Listen)
		b.WriteString("\treverse_proxy {\n")
		fmt.Fprintf(&b, "\t\tdynamic healthready %s {\n", strings.Join(s.Upstreams, " "))
		fmt.Fprintf(&b, `			name s3
			path /minio/health/ready
			interval 3s
			timeout 1s
			rise 3
			fall 3
			concurrency 10
			passive_fails 1
			passive_window 30s
			hold 15s
			hold_max 1000
			busy_window 5s
		}
		lb_policy session_affinity {
			query sessionid
			s3_multipart object
			query uploadid
			s3_object
			fingerprint
			salt %s
		}
		lb_retries 6
		lb_retry_match {
			method GET HEAD OPTIONS
		}
		lb_retry_match {
			method GET HEAD OPTIONS
			expression `+"`{rp.status_code} in [502, 503, 504]`"+`
		}
		request_buffers 0
		flush_interval -1
		header_up X-Real-IP {remote_host}
		transport minio {
			keepalive 2m
			keepalive_idle_conns_per_host 32
			expect_continue_timeout 1s
			try_timeout %s
			response_header_timeout 5m
			hedge %s
		}
	}
}
`, Salt, caddyDuration(tryTimeout), hedge)
	}
	return b.String()
}

// StockFaultCaddyfile is target (b) of the fault cells: stock Caddy with
// its own per-try timeout as its documentation describes it
// (response_header_timeout of `transport http`: how long to wait for the
// response headers after the request was written; a GET or HEAD that
// times out is retried on another upstream by lb_retries / lb_retry_match,
// and the upstream gets a passive failure: max_fails 1), the same retries
// as ours (6, reads also on 502/503/504), active checks with the seed's
// knobs.
func StockFaultCaddyfile(sites []Site, tryTimeout time.Duration) string {
	var b strings.Builder
	b.WriteString(caddyGlobal)
	for _, s := range sites {
		writeCaddySite(&b, s.Listen)
		fmt.Fprintf(&b, "\treverse_proxy %s {\n", strings.Join(s.Upstreams, " "))
		fmt.Fprintf(&b, `		lb_policy query sessionid
		health_uri /minio/health/ready
		health_interval 3s
		health_timeout 1s
		health_passes 3
		health_fails 3
		max_fails 1
		fail_duration 30s
		lb_retries 6
		lb_retry_match {
			method GET HEAD OPTIONS
		}
		lb_retry_match {
			method GET HEAD OPTIONS
			expression `+"`{rp.status_code} in [502, 503, 504]`"+`
		}
		flush_interval -1
		request_buffers 0
		header_up X-Real-IP {remote_host}
		transport http {
			keepalive 60s
			keepalive_idle_conns_per_host 32
			expect_continue_timeout 1s
			response_header_timeout %s
		}
	}
}
`, caddyDuration(tryTimeout))
	}
	return b.String()
}

// NginxFaultConf is target (c) of the fault cells: the seed's site with
// the per-try timeout nginx documents: proxy_read_timeout (between two
// reads of the response, so also the wait for its header) and
// proxy_send_timeout, with `timeout` and http_429 among the
// proxy_next_upstream conditions, at most 6 tries (proxy_next_upstream_tries,
// as ours lb_retries), proxy_connect_timeout 1s; a timed-out or refused try
// counts against the server's max_fails=1 fail_timeout=10s (the defaults).
// nginx does not pass a request whose unbuffered body it began to send to
// another server (proxy_request_buffering off).
func NginxFaultConf(dir string, sites []Site, tryTimeout time.Duration) string {
	conf := NginxConf(dir, sites)
	t := fmt.Sprintf("%ds", int(tryTimeout/time.Second))
	conf = strings.ReplaceAll(conf, "            proxy_next_upstream error timeout http_500 http_502 http_503 http_504;\n",
		"            proxy_next_upstream error timeout http_500 http_502 http_503 http_504 http_429;\n"+
			"            proxy_next_upstream_tries 7;\n"+
			"            proxy_read_timeout "+t+";\n"+
			"            proxy_send_timeout "+t+";\n")
	return strings.ReplaceAll(conf, "            proxy_connect_timeout 300;\n", "            proxy_connect_timeout 1s;\n")
}

// HAProxyFaultConf is target (d) of the fault cells: HAProxy's per-try
// timeout is `timeout server` (its documentation: the maximum inactivity
// time on the server side, so also the wait for the response), with
// `retries 6`, `option redispatch 1` (every retry on another server) and
// `retry-on conn-failure empty-response response-timeout` plus the 5xx
// answers (HAProxy 2.6 cannot retry on 429); retries other than
// conn-failure need the request in one buffer, so bodies over tune.bufsize
// (16 KiB) are not retried. Health checks with `timeout check 1s`, and
// `observe layer7 error-limit 1 on-error mark-down`: a server that errs or
// times out on real traffic is marked down at once, as nginx's max_fails=1
// and our passive_fails 1 do.
func HAProxyFaultConf(sites []Site, tryTimeout time.Duration) string {
	conf := HAProxyConf(sites)
	t := fmt.Sprintf("%ds", int(tryTimeout/time.Second))
	conf = strings.Replace(conf, "    timeout server 300s\n", "    timeout server "+t+"\n    timeout check 1s\n", 1)
	conf = strings.Replace(conf, "    retries 2\n    option redispatch\n", "    retries 6\n    option redispatch 1\n", 1)
	conf = strings.Replace(conf, "    default-server check inter 3s fall 3 rise 3\n", "    default-server check inter 3s fall 3 rise 3 observe layer7 error-limit 1 on-error mark-down\n", -1)
	return conf
}
