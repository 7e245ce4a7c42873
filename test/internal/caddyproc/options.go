package caddyproc

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BuildHint is the command that builds the custom caddy binary.
const BuildHint = "./xcaddy.sh build"

// Options configures one caddy process.
type Options struct {
	// Caddyfile is the config text (adapter "caddyfile" unless Adapter
	// says otherwise). Exactly one of Caddyfile, Config and ConfigPath.
	Caddyfile string
	// Config is a JSON config (adapter none unless Adapter is set).
	Config []byte
	// ConfigPath is a config file used where it is (e.g.
	// examples/Caddyfile). Its adapter is "caddyfile" unless the name ends
	// in .json or Adapter is set.
	ConfigPath string
	// Adapter overrides the config adapter ("caddyfile", "json", ...).
	Adapter string

	// Env is added to the process environment after the harness's own
	// variables (later entries win).
	Env []string

	// AdminAddr is the admin API address; default a free 127.0.0.1 port.
	// It is passed as CADDY_ADMIN.
	AdminAddr string

	// Dir holds the config copy, the logs and Caddy's XDG dirs. Default a
	// new temporary directory, removed by Stop unless KeepDir.
	Dir     string
	KeepDir bool

	// Binary is the caddy executable. Default $CADDY_BIN, else
	// <repo>/bin/caddy.
	Binary string

	// Log, if set, also receives the process's stderr (Caddy's own log).
	Log io.Writer

	// ReadyTimeout bounds the wait for the admin API and the listeners.
	// Default 30s.
	ReadyTimeout time.Duration
}

// DefaultBinary is $CADDY_BIN, else bin/caddy at the root of this
// repository (found by walking up from the working directory to go.mod).
func DefaultBinary() string {
	if b := os.Getenv("CADDY_BIN"); b != "" {
		return b
	}
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, "bin", "caddy")
	}
	return filepath.Join("bin", "caddy")
}

// RepoRoot finds the directory of this module's go.mod above the working
// directory (tests run in their package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/minio-lb/caddy-minio-lb\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("caddyproc: no go.mod of github.com/minio-lb/caddy-minio-lb above the working directory")
		}
		dir = parent
	}
}

func (o Options) withDefaults() (Options, error) {
	n := 0
	for _, set := range []bool{o.Caddyfile != "", len(o.Config) > 0, o.ConfigPath != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return o, fmt.Errorf("caddyproc: set exactly one of Caddyfile, Config and ConfigPath (got %d)", n)
	}
	if o.Adapter == "" {
		switch {
		case o.Caddyfile != "":
			o.Adapter = "caddyfile"
		case o.ConfigPath != "" && !strings.HasSuffix(o.ConfigPath, ".json"):
			o.Adapter = "caddyfile"
		}
	}
	if o.Binary == "" {
		o.Binary = DefaultBinary()
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	return o, nil
}

func checkBinary(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("caddyproc: caddy binary not found at %s (set CADDY_BIN or build it with `%s`): %w", path, BuildHint, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("caddyproc: %s is not an executable file (set CADDY_BIN or rebuild with `%s`)", path, BuildHint)
	}
	return nil
}

// RepoRootT is RepoRoot for tests: the repository root, or a fatal error.
// It is the one place the test module finds the repository (examples/,
// bin/caddy).
func RepoRootT(tb testing.TB) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// BinaryT is DefaultBinary for tests: the custom caddy, or a fatal error
// naming the command that builds it. Nothing falls back to another build:
// the tests run the binary users run.
func BinaryT(tb testing.TB) string {
	tb.Helper()
	bin := DefaultBinary()
	if err := checkBinary(bin); err != nil {
		tb.Fatal(err)
	}
	return bin
}
