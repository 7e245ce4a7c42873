// Package multipart proves, on a real 4-node MinIO cluster behind the
// custom Caddy running examples/Caddyfile, that a bucket-wide
// ListMultipartUploads through the proxy is complete and paged as S3 pages
// it, whichever node created each upload:
//
//   - uploads created through the proxy by clients with different
//     fingerprints, for different objects, land on every node (read back
//     from the access log field `upstream`), and one listing through the
//     proxy returns every one of them, while each node asked directly
//     lists only its own (MinIO keeps that list in the node's memory);
//   - every paging parameter (prefix, delimiter, key-marker,
//     upload-id-marker, max-uploads, encoding-type=url) walked page by
//     page through the proxy gives the pages S3 defines, computed from the
//     reference listing of the same uploads created through one node and
//     asked of that node directly; with no parameters the proxy's answer
//     is that node's answer byte for byte; a prefix that names one object
//     (MinIO pages those itself) gives the same pages direct and through
//     the proxy;
//   - ceph/s3-tests' test_list_multipart_upload, replayed with boto3, passes
//     through the proxy (and, when its uploads and its listing land on
//     different nodes, fails through the same config without
//     s3_list_uploads);
//   - a node that is down makes the listing fail with 503
//     ServiceUnavailable, never a partial list; once it is back, the
//     listing works again and lacks exactly the uploads created through it
//     (its memory is gone; the uploads are still on disk).
//
// Run it after `./xcaddy.sh build` and `./xcaddy.sh minio`:
//
//	cd test && go test -race -count=1 -v ./multipart/
package multipart
