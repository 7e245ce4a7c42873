package miniocluster_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"
)

type netListenConfig struct{}

func (netListenConfig) listen(port int) (net.Listener, error) {
	return net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
}

func itoa(i int) string { return strconv.Itoa(i) }

// clusterProbe GETs a path with a long timeout and returns the status.
func clusterProbe(ctx context.Context, addr, path string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
