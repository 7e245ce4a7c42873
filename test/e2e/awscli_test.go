package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsCLI runs `aws` against the S3 site with the root credentials and no
// user config (AWS_CONFIG_FILE and the credentials file point at nothing).
type awsCLI struct {
	t        *testing.T
	bin      string
	endpoint string
	env      []string
	dir      string
}

func newAWSCLI(t *testing.T, e *env) *awsCLI {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("awscli is not installed (`aws` not in PATH): install it with `apt-get install -y awscli` (or `./xcaddy.sh deps`)")
	}
	dir := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID="+e.user,
		"AWS_SECRET_ACCESS_KEY="+e.pass,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
	return &awsCLI{t: t, bin: bin, endpoint: "http://" + e.caddy.S3Addr, env: env, dir: dir}
}

func (a *awsCLI) run(args ...string) string {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, append([]string{"--endpoint-url", a.endpoint}, args...)...)
	cmd.Env, cmd.Dir = a.env, a.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		a.t.Fatalf("aws %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// testAWSCLI is the CLI smoke test: bucket, put (single and multipart),
// head, list, get, presign, delete, all through Caddy.
func testAWSCLI(t *testing.T, e *env) {
	a := newAWSCLI(t, e)
	from, mark := e.caddy.LogSize(), sentRequests.Mark()
	bucket := "e2e-awscli"
	small := filepath.Join(a.dir, "small.bin")
	big := filepath.Join(a.dir, "big.bin") // over awscli's 8 MiB multipart threshold
	smallData, bigData := randomBytes(100<<10, 11), randomBytes(20*mib, 12)
	for p, b := range map[string][]byte{small: smallData, big: bigData} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.run("s3", "mb", "s3://"+bucket)
	a.run("s3", "cp", small, "s3://"+bucket+"/small.bin")
	a.run("s3", "cp", big, "s3://"+bucket+"/big.bin")
	if out := a.run("s3api", "head-object", "--bucket", bucket, "--key", "big.bin"); !strings.Contains(out, "20971520") {
		t.Fatalf("head-object big.bin: want ContentLength 20971520, got %s", out)
	}
	if out := a.run("s3", "ls", "s3://"+bucket+"/"); !strings.Contains(out, "small.bin") || !strings.Contains(out, "big.bin") {
		t.Fatalf("s3 ls: want small.bin and big.bin, got %s", out)
	}
	for name, want := range map[string][]byte{"small.bin": smallData, "big.bin": bigData} {
		dst := filepath.Join(a.dir, "got-"+name)
		a.run("s3", "cp", "s3://"+bucket+"/"+name, dst)
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Fatalf("aws s3 cp down %s: %d bytes with another hash than the %d uploaded", name, len(got), len(want))
		}
	}
	u := strings.TrimSpace(a.run("s3", "presign", "s3://"+bucket+"/small.bin", "--expires-in", "600"))
	if got := httpDo(t, http.MethodGet, u, nil, http.StatusOK); !bytes.Equal(got, smallData) {
		t.Fatal("GET of the URL `aws s3 presign` made: wrong bytes")
	}
	a.run("s3", "rm", "s3://"+bucket+"/small.bin")
	a.run("s3", "rm", "s3://"+bucket+"/big.bin")
	if out := a.run("s3", "ls", "s3://"+bucket+"/"); strings.TrimSpace(out) != "" {
		t.Fatalf("s3 ls after rm: want nothing, got %s", out)
	}
	a.run("s3", "rb", "s3://"+bucket)

	// Caddy writes a request's log line after its response. The aws
	// commands ran one after the other, each a new process started after
	// the previous one had its answers: wait for the line of the last one
	// (`s3 rb`, DELETE of the bucket), the multipart upload's and the
	// presigned GET's (tagged by httpDo's client).
	presigned := sentRequests.IDsSince(mark)
	mpOf := func(es []logEntry) []logEntry {
		return filter(es, func(x logEntry) bool {
			q := x.Query()
			_, a := q["uploads"]
			_, b := q["uploadId"]
			return x.Path() == "/"+bucket+"/big.bin" && (a || b)
		})
	}
	all := e.caddy.waitLog(t, from, 10*time.Second, func(es []logEntry) bool {
		logged := byRequestID(es)
		for _, id := range presigned {
			if len(logged[id]) == 0 {
				return false
			}
		}
		rb := filter(es, func(x logEntry) bool { return x.Request.Method == http.MethodDelete && x.Path() == "/"+bucket })
		return len(rb) > 0 && len(mpOf(es)) >= 5
	})
	es := filter(all, func(x logEntry) bool { return strings.HasPrefix(x.Path(), "/"+bucket) })
	bad := 0
	for _, x := range es {
		if x.Status == http.StatusForbidden || x.Status >= 500 {
			bad++
			t.Errorf("awscli request through caddy failed: %s %s -> %d", x.Request.Method, x.Request.URI, x.Status)
		}
	}
	mp := mpOf(es)
	// 20 MiB in awscli's default 8 MiB chunks: create, 3 parts, complete.
	if len(mp) < 5 {
		t.Errorf("awscli multipart: %d multipart requests in the access log, want at least 5", len(mp))
	} else if ups := upstreams(mp); len(ups) != 1 {
		t.Errorf("awscli multipart upload reached %d nodes, want 1: %v", len(ups), ups)
	} else {
		for up := range ups {
			e.rep.addf("S3/awscli", "multipart upload of `aws s3 cp` (20 MiB)", "%d requests, all on %s", len(mp), e.nodeOf(up))
		}
	}
	e.rep.addf("S3/awscli", "requests / failed (403 or 5xx)", "%d / %d", len(es), bad)
}
