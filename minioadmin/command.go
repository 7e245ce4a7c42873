package minioadmin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "minio-lb",
		Short: "Drains and undrains MinIO nodes on running caddy-minio-lb proxies",
		Long: `
Drains, undrains and shows MinIO nodes on one or more running Caddy proxies
through their admin API (POST, DELETE and GET /minio-lb/drain), as
'caddy reload' uses /load.

A drained node gets no new requests; requests in flight finish. Before a
drain each proxy asks the node's /minio/health/cluster?maintenance=true and
refuses (with MinIO's reason) when the cluster would lose quorum or drives
are healing, unless --force is given.

<node> is a node's upstream address (host:port; its S3 address also drains
the console upstream probed there) or a host (every upstream on it).

--address may be given more than once (or comma separated) to act on every
proxy of a keepalived pair in one call; a node is "safe to stop" only when
every proxy says so. Without it, the admin address comes from --config (and
--adapter), else Caddy's default (localhost:2019). An https:// address is a
remote admin endpoint: give --client-cert and --client-key (and --ca-cert
if its certificate is not publicly trusted).

The rolling-restart recipe, one node at a time:

  caddy minio-lb drain 10.0.0.3:9000 --address a:2019,b:2019 --wait 5m
  (restart MinIO on that node; wait until it is ready)
  caddy minio-lb undrain 10.0.0.3:9000 --address a:2019,b:2019
  (wait until every proxy's status page shows the node routable again)
`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, sub := range []struct{ name, use, short string }{
				{"drain", "drain <node> [--pool <pool>] [--force] [--wait <duration>]", "Drains a node: no new requests go to it"},
				{"undrain", "undrain <node> [--pool <pool>]", "Ends a node's drain"},
				{"status", "status [<node>] [--pool <pool>] [--wait <duration>]", "Shows drained nodes, in-flight requests and whether they are safe to stop"},
			} {
				c := &cobra.Command{
					Use:   sub.use,
					Short: sub.short,
					Args:  cobra.MaximumNArgs(1),
					RunE:  runE(sub.name),
				}
				f := c.Flags()
				f.StringSlice("address", nil, "Admin API address of a proxy (repeatable, or comma separated)")
				f.StringP("config", "c", "", "Configuration file whose admin address to use")
				f.StringP("adapter", "a", "", "Name of config adapter to apply")
				f.String("pool", "", "Only this healthready pool")
				f.String("client-cert", "", "Client certificate (PEM) for https:// remote admin addresses")
				f.String("client-key", "", "Client key (PEM) for https:// remote admin addresses")
				f.String("ca-cert", "", "CA certificate (PEM) of remote admin endpoints")
				f.Duration("timeout", 30*time.Second, "Time each admin call may take")
				if sub.name == "drain" {
					f.Bool("force", false, "Drain even if MinIO says the cluster would lose quorum or drives are healing")
					f.String("by", "", "Who asks, for the proxies' logs (default: user@host)")
				}
				if sub.name != "undrain" {
					f.Duration("wait", 0, "Wait up to this long until the node is safe to stop on every proxy")
				}
				cmd.AddCommand(c)
			}
		},
	})
}

// runE runs one subcommand and turns its outcome into Caddy's exit codes.
func runE(name string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		node := ""
		if len(args) == 1 {
			node = args[0]
		}
		if node == "" && name != "status" {
			return fmt.Errorf("%s: the node is required (host:port or host)", name)
		}
		opts, err := optionsFromFlags(cmd)
		if err != nil {
			return err
		}
		ok, err := run(cmd.Context(), cmd.OutOrStdout(), name, node, opts)
		if err != nil {
			return err
		}
		if !ok {
			os.Exit(caddy.ExitCodeFailedStartup)
		}
		return nil
	}
}

// options of one run.
type options struct {
	addresses []string
	pool, by  string
	force     bool
	wait      time.Duration
	timeout   time.Duration
	tls       *tls.Config
}

func optionsFromFlags(cmd *cobra.Command) (options, error) {
	f := cmd.Flags()
	var o options
	addrs, _ := f.GetStringSlice("address")
	o.pool, _ = f.GetString("pool")
	o.force, _ = f.GetBool("force")
	o.by, _ = f.GetString("by")
	o.wait, _ = f.GetDuration("wait")
	o.timeout, _ = f.GetDuration("timeout")
	if o.by == "" {
		o.by = whoAmI()
	}
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a != "" {
			o.addresses = append(o.addresses, a)
		}
	}
	if len(o.addresses) == 0 {
		cfg, _ := f.GetString("config")
		adapter, _ := f.GetString("adapter")
		a, err := caddycmd.DetermineAdminAPIAddress("", nil, cfg, adapter)
		if err != nil {
			return o, fmt.Errorf("finding the admin address: %v", err)
		}
		o.addresses = []string{a}
	}
	cert, _ := f.GetString("client-cert")
	key, _ := f.GetString("client-key")
	ca, _ := f.GetString("ca-cert")
	tc, err := tlsConfig(cert, key, ca)
	if err != nil {
		return o, err
	}
	o.tls = tc
	return o, nil
}

func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("caddy minio-lb (%s@%s)", name, host)
}

// tlsConfig is the client side of Caddy's remote admin: a client
// certificate and, optionally, the CA of the admin endpoint.
func tlsConfig(cert, key, ca string) (*tls.Config, error) {
	if cert == "" && key == "" && ca == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, fmt.Errorf("--client-cert and --client-key go together")
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / key %s: %v", cert, key, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert %s: %v", ca, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in it", ca)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// proxyAnswer is one proxy's answer to one call.
type proxyAnswer struct {
	address string
	status  int
	answer  DrainAnswer
	err     error
}

// run calls every proxy, prints their answers, and with wait polls until
// every proxy says safe to stop. ok is false when a proxy refused or
// failed, or the wait ran out.
func run(ctx context.Context, out io.Writer, name, node string, o options) (bool, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	method := map[string]string{"drain": http.MethodPost, "undrain": http.MethodDelete, "status": http.MethodGet}[name]
	deadline := time.Now().Add(o.wait)
	answers := callAll(ctx, method, node, o)
	if name == "drain" && o.wait > 0 && refusedByMinIO(answers) {
		// MinIO's refusal can be momentary (a peer still reconnecting to a
		// node restarted a moment ago): ask again within the wait.
		printAnswers(out, name, answers)
		fmt.Fprintf(out, "MinIO refuses the drain for now; asking again every second for up to %s\n", o.wait)
		for refusedByMinIO(answers) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(time.Second):
			}
			answers = callAll(ctx, method, node, o)
		}
	}
	printAnswers(out, name, answers)
	ok := allOK(answers)
	if !ok || o.wait <= 0 {
		return ok, nil
	}
	for !allSafe(answers) {
		if time.Now().After(deadline) {
			fmt.Fprintf(out, "not safe to stop after %s\n", o.wait)
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		answers = callAll(ctx, http.MethodGet, node, o)
		if !allOK(answers) {
			printAnswers(out, "status", answers)
			return false, nil
		}
	}
	printAnswers(out, "status", answers)
	return true, nil
}

// refusedByMinIO reports whether a proxy refused a drain because MinIO
// said the cluster cannot lose the node now (409).
func refusedByMinIO(answers []proxyAnswer) bool {
	for _, a := range answers {
		if a.err == nil && a.status == http.StatusConflict {
			return true
		}
	}
	return false
}

func allOK(answers []proxyAnswer) bool {
	for _, a := range answers {
		if a.err != nil || a.status != http.StatusOK {
			return false
		}
	}
	return true
}

func allSafe(answers []proxyAnswer) bool {
	for _, a := range answers {
		if !a.answer.SafeToStop {
			return false
		}
	}
	return len(answers) > 0
}

// callAll sends the same call to every proxy, one after the other (a
// drain is refused on the first proxy whose MinIO check fails; the others
// then get it too and refuse the same way).
func callAll(ctx context.Context, method, node string, o options) []proxyAnswer {
	out := make([]proxyAnswer, 0, len(o.addresses))
	for _, addr := range o.addresses {
		out = append(out, call(ctx, method, addr, node, o))
	}
	return out
}

func call(ctx context.Context, method, addr, node string, o options) proxyAnswer {
	a := proxyAnswer{address: addr}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	base, client, err := adminClient(addr, o.tls)
	if err != nil {
		a.err = err
		return a
	}
	var body io.Reader
	target := base + DrainPath
	if method == http.MethodGet {
		target += "?node=" + url.QueryEscape(node) + "&pool=" + url.QueryEscape(o.pool)
	} else {
		b, _ := json.Marshal(DrainRequest{Node: node, Pool: o.pool, Force: o.force, By: o.by})
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		a.err = err
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Caddy's admin endpoint checks the Origin of requests it did not
	// make itself, as for `caddy reload`.
	req.Header.Set("Origin", base)
	resp, err := client.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err := json.Unmarshal(raw, &a.answer); err != nil || (a.status >= 400 && a.answer.Error == "") {
		// Caddy's own admin errors are {"error": "..."}.
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			a.answer.Error = e.Error
		} else if err != nil {
			a.err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
		}
	}
	return a
}

// adminClient returns the base URL and a client for an admin address in
// Caddy's network address form (localhost:2019, unix//run/caddy.sock) or
// an https:// URL of a remote admin endpoint.
func adminClient(addr string, tc *tls.Config) (string, *http.Client, error) {
	if strings.HasPrefix(addr, "https://") || strings.HasPrefix(addr, "http://") {
		tr := &http.Transport{TLSClientConfig: tc}
		return strings.TrimSuffix(addr, "/"), &http.Client{Transport: tr}, nil
	}
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return "", nil, fmt.Errorf("admin address %q: %v", addr, err)
	}
	base := "http://" + na.JoinHostPort(0)
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		base = "http://127.0.0.1"
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, na.Network, na.JoinHostPort(0))
	}}
	return base, &http.Client{Transport: tr}, nil
}

// printAnswers writes one line per proxy and node.
func printAnswers(out io.Writer, name string, answers []proxyAnswer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PROXY\tPOOL\tNODE\tDRAINED\tIN FLIGHT\tSAFE TO STOP\tNOTE\n")
	for _, a := range answers {
		switch {
		case a.err != nil:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tno\t%s failed: %v\n", a.address, name, a.err)
			continue
		case a.answer.Error != "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tno\t%s refused (HTTP %d): %s\n", a.address, name, a.status, a.answer.Error)
			continue
		case len(a.answer.Nodes) == 0:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\tno drained node\n", a.address)
			continue
		}
		for _, n := range a.answer.Nodes {
			note := ""
			if n.Drained {
				note = "since " + n.Since.Format(time.RFC3339) + " by " + n.By
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.address, n.Pool, n.Upstream, yesNo(n.Drained), n.InFlight, yesNo(n.SafeToStop), note)
		}
		for _, m := range a.answer.Maintenance {
			fmt.Fprintf(tw, "%s\t\t%s\t\t\t\tMinIO maintenance check: %d, %s\n", a.address, m.Node, m.Status, m.Reason)
		}
	}
	_ = tw.Flush()
	if len(answers) > 1 || (len(answers) == 1 && len(answers[0].answer.Nodes) > 0) {
		fmt.Fprintf(out, "safe to stop on every proxy: %s\n", yesNo(allOK(answers) && allSafe(answers)))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
