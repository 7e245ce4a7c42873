package loadbench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HealthPath is MinIO's readiness probe, served by the fast backends too.
const HealthPath = "/minio/health/ready"

// payload is the shared body of every GET; larger objects repeat it.
var payload = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

// Backend is a fast loopback HTTP server standing in for a MinIO node when
// the proxy's own cost is measured: GET /obj/<size> answers <size> bytes,
// GET /heavy/<object> HeavyObjectSize bytes, PUT reads and drops the body,
// GET/HEAD /minio/health/ready answers 200.
//
// Kill closes the listener and resets every open connection; the port is
// then held by a "tombstone" that answers each new connection with a TCP
// reset after reading its request line, so the harness can see when a
// proxy stops sending traffic there. Restart serves again on the same port.
type Backend struct {
	ID   int
	Addr string

	mu    sync.Mutex
	srv   *http.Server
	ln    net.Listener
	conns map[net.Conn]struct{}
	tomb  net.Listener

	served       atomic.Int64 // non-probe requests answered
	probes       atomic.Int64 // health probes answered
	tombHits     atomic.Int64 // non-probe requests reset while killed
	lastTombHit  atomic.Int64 // unix nanos of the last one
	restartedAt  atomic.Int64 // unix nanos of the last Restart
	firstAfterRS atomic.Int64 // unix nanos of the first non-probe request after it
}

// StartBackend serves on addr ("127.0.0.1:0" picks a free port).
func StartBackend(id int, addr string) (*Backend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &Backend{ID: id, Addr: ln.Addr().String()}
	b.serve(ln)
	return b, nil
}

func (b *Backend) serve(ln net.Listener) {
	b.conns = map[net.Conn]struct{}{}
	srv := &http.Server{
		Handler:           http.HandlerFunc(b.handle),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ConnState: func(c net.Conn, s http.ConnState) {
			b.mu.Lock()
			defer b.mu.Unlock()
			switch s {
			case http.StateNew:
				b.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(b.conns, c)
			}
		},
	}
	b.srv = srv
	b.ln = ln
	go func() { _ = srv.Serve(ln) }()
}

func (b *Backend) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", strconv.Itoa(b.ID))
	if r.URL.Path == HealthPath {
		b.probes.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	now := time.Now().UnixNano()
	b.served.Add(1)
	if b.restartedAt.Load() != 0 {
		b.firstAfterRS.CompareAndSwap(0, now)
	}
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		w.Header().Set("X-Received", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusOK)
	case http.MethodGet, http.MethodHead:
		size := 0
		if s, ok := strings.CutPrefix(r.URL.Path, "/obj/"); ok {
			size, _ = strconv.Atoi(s)
		} else if strings.HasPrefix(r.URL.Path, "/"+HeavyBucket+"/") {
			size = HeavyObjectSize // the heavy client's objects
		}
		if size < 0 || size > 1<<30 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodHead {
			return
		}
		for size > 0 {
			n := min(size, len(payload))
			if _, err := w.Write(payload[:n]); err != nil {
				return
			}
			size -= n
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// Served is the number of non-probe requests answered so far.
func (b *Backend) Served() int64 { return b.served.Load() }

// Probes is the number of health probes answered so far.
func (b *Backend) Probes() int64 { return b.probes.Load() }

// Kill stops serving: the listener closes, open connections are reset and
// a tombstone takes the port (see Backend).
func (b *Backend) Kill() error {
	b.mu.Lock()
	srv, ln := b.srv, b.ln
	b.srv, b.ln = nil, nil
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	if srv == nil {
		return errors.New("backend already killed")
	}
	// Close the listener first so no new connection is accepted by srv
	// (Serve may not have registered it yet, so close it by hand too).
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Shutdown with a done context: close listeners, do not wait
	_ = srv.Shutdown(ctx)
	for _, c := range conns {
		resetConn(c)
	}
	_ = srv.Close()
	var tomb net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if tomb, err = net.Listen("tcp", b.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.tomb = tomb
	b.mu.Unlock()
	go b.tombstone(tomb)
	return nil
}

// resetConn closes c with SO_LINGER 0, which sends a TCP RST.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (b *Backend) tombstone(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			if line != "" && !strings.Contains(line, HealthPath) {
				b.tombHits.Add(1)
				b.lastTombHit.Store(time.Now().UnixNano())
			}
			resetConn(c)
		}()
	}
}

// Restart serves again on the same address.
func (b *Backend) Restart() error {
	b.mu.Lock()
	tomb := b.tomb
	b.tomb = nil
	running := b.srv != nil
	b.mu.Unlock()
	if running {
		return errors.New("backend is running")
	}
	if tomb != nil {
		_ = tomb.Close()
	}
	var ln net.Listener
	var err error
	// The tombstone's port is free again at once; retry briefly in case
	// the kernel still holds it.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", b.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	b.firstAfterRS.Store(0)
	b.restartedAt.Store(time.Now().UnixNano())
	b.mu.Lock()
	b.serve(ln)
	b.mu.Unlock()
	return nil
}

// Close stops the backend for good.
func (b *Backend) Close() {
	b.mu.Lock()
	srv, ln, tomb := b.srv, b.ln, b.tomb
	b.srv, b.ln, b.tomb = nil, nil, nil
	b.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	if srv != nil {
		_ = srv.Close()
	}
	if tomb != nil {
		_ = tomb.Close()
	}
}

// killStats reports, for the failover timeline, the non-probe requests that
// reached the killed node, when the last one came, and when the first
// request after Restart was served (zero times when none).
func (b *Backend) killStats() (hits int64, lastHit, firstAfterRestart time.Time) {
	hits = b.tombHits.Load()
	if n := b.lastTombHit.Load(); n != 0 {
		lastHit = time.Unix(0, n)
	}
	if n := b.firstAfterRS.Load(); n != 0 {
		firstAfterRestart = time.Unix(0, n)
	}
	return hits, lastHit, firstAfterRestart
}
