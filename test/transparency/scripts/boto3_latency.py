#!/usr/bin/env python3
"""Per-operation latency of boto3 against several endpoints, interleaved.

Usage: boto3_latency.py BUCKET ITERATIONS NAME=URL [NAME=URL ...]
Prints JSON: {name: {operation: [milliseconds, ...]}}. Each iteration runs
every operation against every endpoint in turn, so drift (MinIO caches, CPU
frequency) hits all endpoints alike. One warm-up round is not recorded.
"""
import io
import json
import sys
import time

import boto3
from botocore.config import Config

bucket, iterations = sys.argv[1], int(sys.argv[2])
targets = [a.split("=", 1) for a in sys.argv[3:]]
clients = {name: boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                            max_pool_connections=4))
           for name, url in targets}
small, large = b"s" * (200 << 10), b"l" * (1 << 20)
ops = [
    ("PutObject 200 KiB", lambda c: c.put_object(Bucket=bucket, Key="lat/200k", Body=small)),
    ("PutObject 1 MiB", lambda c: c.put_object(Bucket=bucket, Key="lat/1m", Body=large)),
    ("GetObject 200 KiB", lambda c: c.get_object(Bucket=bucket, Key="lat/200k")["Body"].read()),
    ("HeadObject", lambda c: c.head_object(Bucket=bucket, Key="lat/200k")),
    ("ListObjectsV2", lambda c: c.list_objects_v2(Bucket=bucket, Prefix="lat/")),
]
res = {name: {op: [] for op, _ in ops} for name, _ in targets}
for i in range(iterations + 1):
    for op, fn in ops:
        for name, _ in targets:
            t0 = time.perf_counter()
            fn(clients[name])
            dt = (time.perf_counter() - t0) * 1000
            if i > 0:
                res[name][op].append(dt)
print(json.dumps(res))
