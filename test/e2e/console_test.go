package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// testConsole loads the MinIO console through the console site, logs in,
// and opens the console's websocket (/ws/objectManager) through Caddy: a
// 101 with the right Sec-WebSocket-Accept, then a ping answered by a pong.
func testConsole(t *testing.T, e *env) {
	from, mark := e.caddy.LogSize(), sentRequests.Mark()
	client := &http.Client{Timeout: 10 * time.Second, Transport: sentRequests.Transport(http.DefaultTransport)}
	resp, err := client.Get(e.caddy.ConsoleURL + "/")
	if err != nil {
		t.Fatalf("GET console /: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(bytes.ToLower(page), []byte("<html")) || !bytes.Contains(page, []byte("MinIO")) {
		t.Fatalf("GET console /: status %d, Content-Type %q, want the console's HTML; got %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}

	// Log in with the root credentials: the console answers 204 with a
	// session cookie (`token`).
	creds, _ := json.Marshal(map[string]string{"accessKey": e.user, "secretKey": e.pass})
	resp, err = client.Post(e.caddy.ConsoleURL+"/api/v1/login", "application/json", bytes.NewReader(creds))
	if err != nil {
		t.Fatalf("console login: %v", err)
	}
	lb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		t.Fatalf("console login: status %d: %s", resp.StatusCode, lb)
	}
	var cookies []string
	for _, c := range resp.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) == 0 {
		t.Fatal("console login: no session cookie")
	}

	// The login cookie is valid on every node (it is a token signed with
	// the cluster's credentials), so least_conn may pick any node.
	start := time.Now()
	wsID := nextRequestID()
	conn, br := wsHandshake(t, e.caddy.ConsoleURL, "/ws/objectManager", strings.Join(cookies, "; "), wsID)
	defer conn.Close()
	handshake := time.Since(start)
	payload := []byte("e2e-ping")
	if err := wsWriteFrame(conn, 0x9, payload); err != nil {
		t.Fatalf("websocket ping: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; ; i++ {
		op, data, err := wsReadFrame(br)
		if err != nil {
			t.Fatalf("websocket: no pong through caddy: %v", err)
		}
		if op == 0xA && bytes.Equal(data, payload) {
			break
		}
		if i > 20 {
			t.Fatalf("websocket: no pong among 20 frames")
		}
	}
	_ = wsWriteFrame(conn, 0x8, []byte{0x03, 0xE8}) // close 1000
	// Caddy logs the upgraded request when the tunnel ends: close it.
	conn.Close()

	es := e.caddy.waitLogged(t, from, append(sentRequests.IDsSince(mark), wsID), 10*time.Second)
	consoleAddrs := e.c.ConsoleAddrs()
	var ws []logEntry
	for _, x := range es {
		if !slices.Contains(consoleAddrs, x.Upstream) {
			t.Errorf("console request %s %s went to %q, not a console node %v", x.Request.Method, x.Request.URI, x.Upstream, consoleAddrs)
		}
		if strings.HasPrefix(x.Path(), "/ws/") {
			ws = append(ws, x)
		}
	}
	if len(ws) != 1 || ws[0].Status != http.StatusSwitchingProtocols {
		t.Errorf("access log: want one /ws/ request with status 101, got %d", len(ws))
	}
	e.rep.addf("Console", "GET / (console HTML), login, websocket 101 + ping/pong", "ok, websocket handshake %s", ms(handshake))
}

// wsHandshake sends a raw HTTP/1.1 Upgrade, tagged with request id id
// (requestIDHeader), and checks the 101 answer.
func wsHandshake(t *testing.T, base, path, cookie, id string) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	kb := make([]byte, 16)
	_, _ = rand.Read(kb)
	key := base64.StdEncoding.EncodeToString(kb)
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nCookie: %s\r\n%s: %s\r\n\r\n", path, u.Host, base, key, cookie, requestIDHeader, id)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("websocket upgrade: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("websocket upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		t.Fatalf("websocket upgrade of %s: status %d, want 101: %s", path, resp.StatusCode, b)
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(h[:]); got != want {
		t.Fatalf("websocket upgrade: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br
}

// wsWriteFrame writes one final, masked (client) frame.
func wsWriteFrame(w io.Writer, op byte, payload []byte) error {
	if len(payload) > 125 {
		return fmt.Errorf("frame payload of %d bytes: only short frames here", len(payload))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b := []byte{0x80 | op, 0x80 | byte(len(payload))}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	_, err := w.Write(b)
	return err
}

// wsReadFrame reads one unmasked (server) frame.
func wsReadFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	data := make([]byte, n)
	_, err := io.ReadFull(r, data)
	return h[0] & 0x0F, data, err
}
