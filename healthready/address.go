package healthready

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// splitDial parses a dial address (host:port) the way Caddy does and
// returns it normalised as Caddy's {http.reverse_proxy.upstream.hostport},
// plus its host.
func splitDial(dial string) (addr, host string, err error) {
	if strings.Contains(dial, "://") {
		return "", "", fmt.Errorf("want a dial address host:port, not a URL")
	}
	if strings.Contains(dial, "{") {
		return "", "", fmt.Errorf("placeholders are not supported")
	}
	na, err := caddy.ParseNetworkAddress(dial)
	if err != nil {
		return "", "", err
	}
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		return "", "", fmt.Errorf("only TCP addresses can be probed")
	}
	if na.PortRangeSize() != 1 || na.StartPort == 0 {
		return "", "", fmt.Errorf("need exactly one port")
	}
	if na.Host == "" {
		return "", "", fmt.Errorf("need a host")
	}
	return na.JoinHostPort(0), na.Host, nil
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
