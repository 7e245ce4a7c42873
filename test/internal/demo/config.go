// Package demo runs `./xcaddy.sh demo`: a 4-node MinIO cluster on loopback
// behind the custom Caddy with examples/Caddyfile, until Ctrl-C or SIGTERM
// (or DEMO_EXIT_AFTER), or once through a self-check (--check).
package demo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is what the demo runs. FromEnv fills it from DEMO_* variables.
type Config struct {
	S3Ports      []int         // MinIO S3 ports, one per node; nil = free ports (DEMO_S3_PORTS, default 9101-9104)
	ConsolePorts []int         // MinIO console ports (DEMO_CONSOLE_PORTS, default 9201-9204)
	S3Port       int           // the S3 site (DEMO_S3_PORT, default 9000; 0 = a free port)
	ConsolePort  int           // the console site (DEMO_CONSOLE_PORT, default 9001; 0 = a free port)
	ListenHost   string        // interface both sites bind to (DEMO_LISTEN_HOST, default 127.0.0.1)
	AdminAddr    string        // Caddy admin API (DEMO_ADMIN, default localhost:2019; "auto" = a free port)
	RootUser     string        // DEMO_ROOT_USER, default demoadmin
	RootPassword string        // DEMO_ROOT_PASSWORD, default demo-secret-key
	Salt         string        // AFFINITY_SALT (DEMO_SALT, default random per run)
	Dir          string        // data and logs (DEMO_DIR, default a temporary directory)
	KeepData     bool          // DEMO_KEEP_DATA=1 keeps the drives and logs
	ExitAfter    time.Duration // DEMO_EXIT_AFTER, e.g. 30s; 0 = until a signal
	Caddyfile    string        // DEMO_CADDYFILE, default <repo>/examples/Caddyfile
	Verbose      bool          // DEMO_VERBOSE=1: MinIO and Caddy output on stderr
	Check        bool          // --check: verify S3 through the proxy and the status page, then exit
}

// FromEnv reads the demo configuration; getenv is os.Getenv in main.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		S3Ports:      []int{9101, 9102, 9103, 9104},
		ConsolePorts: []int{9201, 9202, 9203, 9204},
		S3Port:       9000,
		ConsolePort:  9001,
		ListenHost:   "127.0.0.1",
		AdminAddr:    "localhost:2019",
		RootUser:     "demoadmin",
		RootPassword: "demo-secret-key",
	}
	var err error
	if v := getenv("DEMO_S3_PORTS"); v != "" {
		if c.S3Ports, err = portList("DEMO_S3_PORTS", v); err != nil {
			return c, err
		}
	}
	if v := getenv("DEMO_CONSOLE_PORTS"); v != "" {
		if c.ConsolePorts, err = portList("DEMO_CONSOLE_PORTS", v); err != nil {
			return c, err
		}
	}
	if c.S3Ports != nil && c.ConsolePorts != nil && len(c.S3Ports) != len(c.ConsolePorts) {
		return c, fmt.Errorf("demo: DEMO_S3_PORTS has %d ports but DEMO_CONSOLE_PORTS has %d", len(c.S3Ports), len(c.ConsolePorts))
	}
	if v := getenv("DEMO_S3_PORT"); v != "" {
		if c.S3Port, err = port("DEMO_S3_PORT", v); err != nil {
			return c, err
		}
	}
	if v := getenv("DEMO_CONSOLE_PORT"); v != "" {
		if c.ConsolePort, err = port("DEMO_CONSOLE_PORT", v); err != nil {
			return c, err
		}
	}
	if v := getenv("DEMO_LISTEN_HOST"); v != "" {
		c.ListenHost = v
	}
	if v := getenv("DEMO_ADMIN"); v != "" {
		c.AdminAddr = v
		if v == "auto" {
			c.AdminAddr = ""
		}
	}
	if v := getenv("DEMO_ROOT_USER"); v != "" {
		c.RootUser = v
	}
	if v := getenv("DEMO_ROOT_PASSWORD"); v != "" {
		if len(v) < 8 {
			return c, fmt.Errorf("demo: DEMO_ROOT_PASSWORD must have at least 8 characters (MinIO's rule)")
		}
		c.RootPassword = v
	}
	c.Salt = getenv("DEMO_SALT")
	if c.Salt == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		c.Salt = hex.EncodeToString(b)
	}
	c.Dir = getenv("DEMO_DIR")
	switch v := getenv("DEMO_KEEP_DATA"); v {
	case "", "0", "false":
	case "1", "true":
		c.KeepData = true
	default:
		return c, fmt.Errorf("demo: DEMO_KEEP_DATA=%q: want 1 or 0", v)
	}
	if v := getenv("DEMO_EXIT_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("demo: DEMO_EXIT_AFTER=%q: want a duration like 30s or 5m", v)
		}
		c.ExitAfter = d
	}
	c.Caddyfile = getenv("DEMO_CADDYFILE")
	c.Verbose = getenv("DEMO_VERBOSE") == "1"
	return c, nil
}

// portList parses "9101 9102", "9101,9102", "9101-9104" or "auto" (nil).
func portList(name, v string) ([]int, error) {
	if v == "auto" {
		return nil, nil
	}
	if a, b, ok := strings.Cut(v, "-"); ok && !strings.ContainsAny(v, " ,") {
		lo, err1 := port(name, a)
		hi, err2 := port(name, b)
		if err1 != nil || err2 != nil || lo == 0 || hi < lo || hi-lo > 31 {
			return nil, fmt.Errorf("demo: %s=%q: want a range like 9101-9104 (at most 32 ports)", name, v)
		}
		var ps []int
		for p := lo; p <= hi; p++ {
			ps = append(ps, p)
		}
		return ps, nil
	}
	var ps []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
		p, err := port(name, f)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("demo: %s=%q: %q is not a port 1..65535", name, v, f)
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("demo: %s=%q: no ports", name, v)
	}
	return ps, nil
}

// port parses a port; "auto" and "0" mean a free port (0).
func port(name, v string) (int, error) {
	if v == "auto" {
		return 0, nil
	}
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("demo: %s=%q: want a port 1..65535 or auto", name, v)
	}
	return p, nil
}
