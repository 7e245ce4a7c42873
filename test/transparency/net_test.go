package transparency

import (
	"fmt"
	"net/http"
	"time"
)

// Root credentials of the MinIO cluster under test (loopback only).
const (
	accessKey = "transparency"
	secretKey = "transparency-secret-key"
	region    = "us-east-1"
)

// waitReady polls url until it answers 200 without MinIO's
// "X-Minio-Server-Status: offline" (which means not initialised yet).
func waitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
			err = fmt.Errorf("status %d, X-Minio-Server-Status %q", resp.StatusCode, resp.Header.Get("X-Minio-Server-Status"))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", within, last)
}
