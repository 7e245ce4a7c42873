package loadbench

// Paths of the Debian peers (overridable for other layouts).
var (
	NginxBin   = "/usr/sbin/nginx"
	HAProxyBin = "/usr/sbin/haproxy"
)
