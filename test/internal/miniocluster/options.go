package miniocluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// InstallHint is the command that installs the MinIO server binary.
const InstallHint = "./xcaddy.sh minio"

// Options configures a cluster. The zero value is a 4-node cluster on free
// loopback ports in a fresh temporary directory.
type Options struct {
	// Nodes is the number of minio server processes. Default 4.
	Nodes int

	// RootUser and RootPassword are the root credentials (MinIO wants a
	// password of at least 8 characters). Default "minioadmin" /
	// "minioadmin".
	RootUser, RootPassword string

	// Dir holds the drives (d1..dN) and the node logs. Default: a new
	// temporary directory that Stop removes. A Dir given here is kept;
	// Stop removes only the drives in it (unless KeepData).
	Dir string

	// KeepData keeps the drives (and a temporary Dir) after Stop.
	KeepData bool

	// S3Ports and ConsolePorts fix the loopback ports, one per node (the
	// demo uses 9101.. and 9201..). Empty: free ports are picked, and the
	// start is retried on fresh ports if another process took one.
	S3Ports, ConsolePorts []int

	// Log, if set, also receives every node's output (the node log files
	// are always written).
	Log io.Writer

	// Env is added to every process's environment after the harness's own
	// variables, so it can override them (e.g. "MINIO_API_REQUESTS_MAX=10").
	Env []string

	// Binary is the minio executable. Default $MINIO_BIN, else
	// ~/.cache/caddy-minio-lb/bin/minio.
	Binary string

	// ReadyTimeout bounds the wait for readiness when the context has no
	// deadline. Default 60s.
	ReadyTimeout time.Duration

	// NoWait makes Start return as soon as the processes are started;
	// call Cluster.WaitReady yourself (used to watch a cluster come up).
	NoWait bool
}

// DefaultBinary is where `./xcaddy.sh minio` installs MinIO, honouring
// $MINIO_BIN and $CADDY_MINIO_LB_CACHE like xcaddy.sh does.
func DefaultBinary() string {
	if b := os.Getenv("MINIO_BIN"); b != "" {
		return b
	}
	cache := os.Getenv("CADDY_MINIO_LB_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "/root"
		}
		cache = filepath.Join(home, ".cache", "caddy-minio-lb")
	}
	return filepath.Join(cache, "bin", "minio")
}

// withDefaults fills the defaults and checks the values.
func (o Options) withDefaults() (Options, error) {
	if o.Nodes == 0 {
		o.Nodes = 4
		if len(o.S3Ports) > 0 {
			o.Nodes = len(o.S3Ports)
		}
	}
	if o.Nodes < 1 || o.Nodes > 32 {
		return o, fmt.Errorf("miniocluster: Nodes must be 1..32, got %d", o.Nodes)
	}
	if len(o.S3Ports) != 0 && len(o.S3Ports) != o.Nodes {
		return o, fmt.Errorf("miniocluster: S3Ports has %d ports for %d nodes: %v", len(o.S3Ports), o.Nodes, o.S3Ports)
	}
	if len(o.ConsolePorts) != 0 && len(o.ConsolePorts) != o.Nodes {
		return o, fmt.Errorf("miniocluster: ConsolePorts has %d ports for %d nodes: %v", len(o.ConsolePorts), o.Nodes, o.ConsolePorts)
	}
	for _, p := range append(append([]int(nil), o.S3Ports...), o.ConsolePorts...) {
		if p < 1 || p > 65535 {
			return o, fmt.Errorf("miniocluster: port %d is out of range 1..65535", p)
		}
	}
	if o.RootUser == "" {
		o.RootUser = "minioadmin"
	}
	if o.RootPassword == "" {
		o.RootPassword = "minioadmin"
	}
	if len(o.RootUser) < 3 {
		return o, fmt.Errorf("miniocluster: RootUser %q is shorter than the 3 characters MinIO requires", o.RootUser)
	}
	if len(o.RootPassword) < 8 {
		return o, fmt.Errorf("miniocluster: RootPassword is shorter than the 8 characters MinIO requires")
	}
	if o.Binary == "" {
		o.Binary = DefaultBinary()
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	return o, nil
}

// checkBinary fails loudly, with the install command, when MinIO is missing.
func checkBinary(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("miniocluster: MinIO server binary not found at %s (set MINIO_BIN or install it with `%s`): %w", path, InstallHint, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("miniocluster: %s is not an executable file (set MINIO_BIN or reinstall with `%s`)", path, InstallHint)
	}
	return nil
}
