// Package miniocluster runs a real distributed MinIO cluster on loopback for
// end-to-end tests, the load harness and the demo.
//
// The cluster is N `minio server` processes (default 4), one drive each,
// every process on its own free loopback S3 port and console port and all of
// them given the same endpoint list, so together they form one erasure set
// (4 drives: EC:2, read quorum 2, write quorum 3). Each process gets
// `_MINIO_SERVER_LOCAL=<its address>` (MinIO cannot tell which endpoint is
// its own when all of them are 127.0.0.1, and inside a container its
// interface detection fails) and `MINIO_CI_CD=1` (no root-drive check).
//
// The MinIO binary is $MINIO_BIN, default ~/.cache/caddy-minio-lb/bin/minio.
// When it is missing, Start returns an error (and StartT fails the test)
// naming the command that installs it: `./xcaddy.sh minio`. Nothing skips.
//
// Typical use in a test:
//
//	c := miniocluster.StartT(t, miniocluster.Options{})
//	user, pass := c.Credentials()
//	addrs := c.S3Addrs()              // "127.0.0.1:PORT", one per node
//	c.Node(1).Kill()                  // SIGKILL node 2 (index 1)
//	require.NoError(t, c.Node(1).Restart(ctx))
//
// API:
//
//	Start(ctx, Options) (*Cluster, error)  start and wait until every node is ready
//	StartT(t, Options) *Cluster            the same, t.Cleanup(Stop), t.Fatal on error,
//	                                       node log tails printed when the test failed
//	(*Cluster).Nodes() / Node(i)           the nodes, index 0..N-1
//	(*Cluster).S3Addrs() / ConsoleAddrs()  "127.0.0.1:PORT" per node, in node order
//	(*Cluster).Credentials()               root user and password
//	(*Cluster).WaitReady(ctx)              wait until every running node is ready
//	(*Cluster).Dir()                       drives and logs live here
//	(*Cluster).Stop()                      kill every process, remove the data
//	(*Node).Kill()                         SIGKILL and reap (a crash)
//	(*Node).Stop() / Cont()                SIGSTOP / SIGCONT (a hang)
//	(*Node).Restart(ctx)                   kill if running, start again on the
//	                                       same ports and drive, wait until ready
//	(*Node).Launch()                       start a killed node, do not wait
//	(*Node).WaitReady(ctx)                 wait until this node is ready
//	(*Node).Probe(ctx, path)               GET a path on the node's S3 port
//	(*Node).S3Addr() / ConsoleAddr() / Pid() / LogPath() / LogTail(n)
//
// "Ready" means what a load balancer must mean by it:
// GET /minio/health/ready answers 200 WITHOUT the header
// `X-Minio-Server-Status: offline` (a starting node answers 200 with it),
// and GET /minio/health/cluster answers 200 (write quorum).
//
// Every process is started with Pdeathsig=SIGKILL from one OS thread that
// never exits, so the servers die with the test binary even when it is killed
// by `go test -timeout`. Each node's stdout and stderr go to
// <Dir>/node<N>.log (appended across restarts) and, if Options.Log is set,
// there too.
package miniocluster
