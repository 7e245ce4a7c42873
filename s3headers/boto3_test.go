package s3headers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	minioUser     = "s3headers-test"
	minioPassword = "s3headers-test-secret"
)

// minioBin finds the MinIO server the way xcaddy.sh does: $MINIO_BIN, else
// the project's cache. Missing is a failure with the install command.
func minioBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("MINIO_BIN")
	if bin == "" {
		cache := os.Getenv("CADDY_MINIO_LB_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			require.NoError(t, err)
			cache = filepath.Join(home, ".cache", "caddy-minio-lb")
		}
		bin = filepath.Join(cache, "bin", "minio")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("MinIO server binary not found (%v): install it with `./xcaddy.sh minio` or set MINIO_BIN", err)
	}
	return bin
}

// requireBoto3 fails unless python3 can import boto3.
func requireBoto3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not found: install it with `apt-get install -y python3-boto3`")
	}
	if out, err := exec.Command(py, "-c", "import boto3").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import boto3 (%v: %s): install it with `apt-get install -y python3-boto3`", py, err, out)
	}
	return py
}

// startMinIO runs one MinIO node on loopback with a fresh data directory
// and waits (at most 60 s) until it is ready. It is killed at cleanup.
func startMinIO(t *testing.T) string {
	t.Helper()
	bin := minioBin(t)
	addr, consoleAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", consoleAddr, t.TempDir())
	cmd.Env = append(os.Environ(),
		"MINIO_CI_CD=1",
		"MINIO_ROOT_USER="+minioUser,
		"MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_BROWSER=off",
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("minio exited early: %v\n%s", err, logs.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			// 200 with X-Minio-Server-Status: offline is not ready yet.
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return addr
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("minio on %s not ready within 60s\n%s", addr, logs.String())
	return ""
}

type botoResult struct {
	Endpoint     string   `json:"endpoint"`
	Head         []string `json:"head"`
	Get          []string `json:"get"`
	PresignedGet string   `json:"presigned_get"`
}

func TestBoto3MetadataThroughCaddy(t *testing.T) {
	py := requireBoto3(t)
	minio := startMinIO(t)
	p := startCaddy(t, minio)

	endpoints := map[string]string{
		"direct": "http://" + minio,
		"stock":  "http://" + p.stock,
		"ours":   "http://" + p.ours,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "meta_case.py"), "meta-case", "obj.txt",
		endpoints["direct"], endpoints["stock"], endpoints["ours"])
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+minioUser,
		"AWS_SECRET_ACCESS_KEY="+minioPassword,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"NO_PROXY=*",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "meta_case.py: %s", stderr.String())

	results := map[string]botoResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r botoResult
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		results[r.Endpoint] = r
	}
	require.Len(t, results, 3, "output:\n%s\nstderr:\n%s", out, stderr.String())

	tests := []struct {
		name     string
		endpoint string
		wantKeys []string
		wantLine string // header line on the wire
	}{
		{"direct to MinIO", endpoints["direct"], []string{"mixedcase"}, "x-amz-meta-mixedcase: v"},
		{"stock reverse_proxy: boto3 sees the canonicalised key", endpoints["stock"], []string{"Mixedcase"}, "X-Amz-Meta-Mixedcase: v"},
		{"s3_header_case: boto3 sees the stored key", endpoints["ours"], []string{"mixedcase"}, "x-amz-meta-mixedcase: v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := results[tt.endpoint]
			assert.Equal(t, tt.wantKeys, r.Head, "head_object Metadata keys")
			assert.Equal(t, tt.wantKeys, r.Get, "get_object Metadata keys")

			// The bytes on the wire, for the record: a presigned GET sent
			// by hand on a raw TCP connection.
			u, err := url.Parse(r.PresignedGet)
			require.NoError(t, err)
			raw := rawRoundTrip(t, u.Host, "GET "+u.RequestURI()+" HTTP/1.1\r\nHost: "+u.Host+"\r\nConnection: close\r\n\r\n")
			head, _, _ := strings.Cut(raw, "\r\n\r\n")
			t.Logf("%s, raw response header:\n%s", tt.name, head)
			require.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK"), head)
			assert.Contains(t, head, "\r\n"+tt.wantLine+"\r\n")
		})
	}
}
