package transparency

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aptHint is how to install the Python clients the tests drive.
const aptHint = "apt-get install -y python3 python3-boto3 awscli"

// requireTools fails (never skips) when python3, boto3 or the AWS CLI is missing.
func requireTools(tb testing.TB, needAWS bool) {
	tb.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		tb.Fatalf("python3 not found; install it: %s", aptHint)
	}
	if out, err := exec.Command("python3", "-c", "import boto3").CombinedOutput(); err != nil {
		tb.Fatalf("boto3 not importable (%v: %s); install it: %s", err, out, aptHint)
	}
	if needAWS {
		if _, err := exec.LookPath("aws"); err != nil {
			tb.Fatalf("aws (AWS CLI) not found; install it: %s", aptHint)
		}
	}
}

// clientEnv is the environment of a Python/AWS CLI client of the test
// MinIO: root credentials, no user config files.
func clientEnv(tb testing.TB) []string {
	home := tb.TempDir()
	return append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_DEFAULT_REGION="+region, "HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "NO_PROXY=*")
}

func runBoto3Matrix(t *testing.T, tg target, bucket string) map[string]any {
	cmd := exec.Command("python3", "scripts/boto3_matrix.py", "http://"+tg.Addr, bucket, "boto3/")
	cmd.Env = clientEnv(t)
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "%s: boto3_matrix.py: %s", tg.Name, stderr)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m), "%s: %s", tg.Name, out)
	return m
}

// testBoto3 runs scripts/boto3_matrix.py direct and through both proxies:
// our proxy must give boto3 exactly what MinIO gives it; stock Caddy is
// expected to break Metadata['mixedcase'] (the negative control proves the
// comparison can see the difference).
func testBoto3(t *testing.T, e *env) {
	requireTools(t, false)
	res := map[string]map[string]any{}
	for _, tg := range e.targets() {
		res[tg.Name] = runBoto3Matrix(t, tg, e.Bucket)
	}
	direct := res["direct"]
	require.Equal(t, "Value", direct["Metadata['mixedcase']"], "direct: boto3 must see the lower-case key")
	for _, name := range []string{"ours", "stock"} {
		got := res[name]
		for op, want := range direct {
			if strings.HasPrefix(op, "_") {
				continue
			}
			if name == "ours" {
				assert.Equal(t, want, got[op], "boto3 %s through our proxy", op)
			} else if !assert.ObjectsAreEqual(want, got[op]) {
				t.Logf("boto3 %s through stock Caddy: %v, direct %v", op, got[op], want)
			}
		}
		// botocore waits 1 s for "100 Continue": a proxy that does not
		// pass it on costs every upload that second.
		added := got["_put_seconds"].(float64) - direct["_put_seconds"].(float64)
		t.Logf("boto3 put_object 256 KiB: direct %.3fs, %s %.3fs", direct["_put_seconds"], name, got["_put_seconds"])
		if name == "ours" {
			assert.Less(t, added, 1.0, "the proxy stalls Expect: 100-continue uploads")
		}
	}
	assert.NotEqual(t, direct["Metadata['mixedcase']"], res["stock"]["Metadata['mixedcase']"],
		"negative control: stock Caddy was expected to break Metadata['mixedcase'] (KeyError)")
}

// testAWSCLI uploads with `aws s3 cp` (Expect: 100-continue, multipart above
// 8 MiB) and reads the metadata back with `aws s3api head-object`.
func testAWSCLI(t *testing.T, e *env) {
	requireTools(t, true)
	file := filepath.Join(t.TempDir(), "upload.bin")
	require.NoError(t, os.WriteFile(file, payload(9<<20, 9), 0o644))
	views := map[string]map[string]any{}
	for _, tg := range e.targets() {
		ep := "http://" + tg.Addr
		key := "awscli/object.bin"
		start := time.Now()
		cp := exec.Command("aws", "--endpoint-url", ep, "s3", "cp", file, "s3://"+e.Bucket+"/"+key,
			"--metadata", "MixedCase=cli", "--only-show-errors")
		cp.Env = clientEnv(t)
		out, err := cp.CombinedOutput()
		require.NoError(t, err, "%s: aws s3 cp: %s", tg.Name, out)
		took := time.Since(start)
		head := exec.Command("aws", "--endpoint-url", ep, "s3api", "head-object", "--bucket", e.Bucket, "--key", key)
		head.Env = clientEnv(t)
		out, err = head.Output()
		require.NoError(t, err, "%s: aws s3api head-object", tg.Name)
		var v map[string]any
		require.NoError(t, json.Unmarshal(out, &v))
		views[tg.Name] = map[string]any{"Metadata": v["Metadata"], "ETag": v["ETag"], "ContentLength": v["ContentLength"]}
		t.Logf("aws s3 cp 9 MiB (multipart) %s: %s, head-object Metadata %v", tg.Name, took.Round(time.Millisecond), v["Metadata"])
	}
	assert.Equal(t, map[string]any{"mixedcase": "cli"}, views["direct"]["Metadata"], "direct")
	assert.Equal(t, views["direct"], views["ours"], "awscli through our proxy")
	if !assert.ObjectsAreEqual(views["direct"], views["stock"]) {
		t.Logf("awscli through stock Caddy: %v, direct %v", views["stock"], views["direct"])
	}
}
