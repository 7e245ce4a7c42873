package s3headers

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoUpgradeBackend answers every request with 101 Switching Protocols and
// then echoes the bytes it receives, like a websocket peer would.
func echoUpgradeBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\n"+
					"Upgrade: websocket\r\nConnection: Upgrade\r\nx-amz-meta-on-upgrade: u\r\n\r\n")
				_, _ = io.Copy(conn, br)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCaddyProxyUpgrade(t *testing.T) {
	// The MinIO console talks websockets: the upgrade must get through
	// s3_header_case (reverse_proxy hijacks the connection through it).
	p := startCaddy(t, echoUpgradeBackend(t))
	conn, err := net.DialTimeout("tcp", p.ours, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: console.local\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	require.NoError(t, err)

	br := bufio.NewReader(conn)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "response so far:\n%s", head.String())
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	t.Logf("upgrade response through s3_header_case:\n%s", head.String())
	require.True(t, strings.HasPrefix(head.String(), "HTTP/1.1 101 Switching Protocols\r\n"), head.String())
	assert.Contains(t, head.String(), "\r\nx-amz-meta-on-upgrade: u\r\n")

	_, err = io.WriteString(conn, "ping")
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(br, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}
