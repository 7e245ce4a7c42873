#!/usr/bin/env python3
"""What a boto3 user sees of a set of S3 operations against one endpoint.

Usage: boto3_matrix.py ENDPOINT BUCKET PREFIX
Prints one JSON object: operation name -> what boto3 returned (or the error
code it raised). Run by test/transparency (Go) direct and through the proxy.
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""
import hashlib
import json
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, bucket, prefix = sys.argv[1:4]


def client(**cfg):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **cfg))


s3 = client()
s3v2 = client(signature_version="s3")  # SigV2, as old scripts configure it
out = {}


def record(name, fn):
    try:
        out[name] = fn()
    except ClientError as e:
        out[name] = {"error": e.response["Error"].get("Code"),
                     "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
    except KeyError as e:  # e.g. Metadata['mixedcase'] through stock Caddy
        out[name] = {"error": "KeyError " + str(e)}


def head_view(h):
    return {"Metadata": h["Metadata"], "ETag": h["ETag"], "ContentLength": h["ContentLength"],
            "ContentType": h.get("ContentType")}


body = bytes(range(256)) * 1024  # 256 KiB
key = prefix + "meta"
record("put_object (Expect: 100-continue, metadata)", lambda: {
    "ETag": s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-test",
                          Metadata={"MixedCase": "Value", "lower": "v"})["ETag"]})
record("head_object Metadata", lambda: head_view(s3.head_object(Bucket=bucket, Key=key)))
record("Metadata['mixedcase']", lambda: s3.head_object(Bucket=bucket, Key=key)["Metadata"]["mixedcase"])


def get_view(**kw):
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    data = r["Body"].read()
    return {"status": r["ResponseMetadata"]["HTTPStatusCode"], "sha256": hashlib.sha256(data).hexdigest(),
            "ContentRange": r.get("ContentRange"), "Metadata": r["Metadata"]}


record("get_object", get_view)
record("get_object Range", lambda: get_view(Range="bytes=10-20"))
etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
record("get_object IfNoneMatch (304)", lambda: get_view(IfNoneMatch=etag))
record("get_object IfMatch other (412)", lambda: get_view(IfMatch='"00000000000000000000000000000000"'))
record("put_object ChecksumAlgorithm CRC32", lambda: {
    k: v for k, v in s3.put_object(Bucket=bucket, Key=prefix + "crc", Body=body,
                                   ChecksumAlgorithm="CRC32").items() if k in ("ETag", "ChecksumCRC32")})
record("head_object ChecksumMode", lambda: s3.head_object(Bucket=bucket, Key=prefix + "crc",
                                                          ChecksumMode="ENABLED").get("ChecksumCRC32"))
record("upload_fileobj multipart", lambda: (s3.upload_fileobj(
    __import__("io").BytesIO(body * 24), bucket, prefix + "multi",
    Config=boto3.s3.transfer.TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)),
    s3.head_object(Bucket=bucket, Key=prefix + "multi")["ETag"])[1])
# 100-continue: time of a put_object; botocore waits 1 s for "100 Continue".
t0 = time.monotonic()
s3.put_object(Bucket=bucket, Key=prefix + "timed", Body=body)
out["_put_seconds"] = time.monotonic() - t0
record("list_objects_v2", lambda: sorted(o["Key"] for o in s3.list_objects_v2(
    Bucket=bucket, Prefix=prefix)["Contents"]))
record("get_object NoSuchKey", lambda: s3.get_object(Bucket=bucket, Key=prefix + "missing"))
record("head_bucket NoSuchBucket", lambda: s3.head_bucket(Bucket="no-such-bucket-transparency"))
record("SigV2 put_object + head_object", lambda: (
    s3v2.put_object(Bucket=bucket, Key=prefix + "v2", Body=b"v2", Metadata={"MixedCase": "v2"}),
    head_view(s3v2.head_object(Bucket=bucket, Key=prefix + "v2")))[1])
url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)
record("presigned GET (urllib)", lambda: hashlib.sha256(urllib.request.urlopen(url).read()).hexdigest())
bad = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="NOSUCHKEY",
                   aws_secret_access_key="wrong", config=Config(retries={"max_attempts": 1}))
record("bad credentials", lambda: bad.head_object(Bucket=bucket, Key=key))
record("delete_object", lambda: s3.delete_object(Bucket=bucket, Key=prefix + "v2")["ResponseMetadata"]["HTTPStatusCode"])

print(json.dumps(out, sort_keys=True, default=str))
