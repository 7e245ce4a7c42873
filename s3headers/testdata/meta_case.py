"""Store an object with user metadata through one S3 endpoint, then read the
metadata back through each endpoint given, the way a boto3 user would.

usage: meta_case.py BUCKET KEY ENDPOINT...

Prints one JSON object per endpoint on stdout:
  {"endpoint": ..., "head": [metadata keys of head_object],
   "get": [metadata keys of get_object], "presigned_get": url}
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""
import json
import sys

import boto3
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=5,
            read_timeout=10,
        ),
    )


def main():
    bucket, key, endpoints = sys.argv[1], sys.argv[2], sys.argv[3:]
    first = client(endpoints[0])
    try:
        first.create_bucket(Bucket=bucket)
    except first.exceptions.BucketAlreadyOwnedByYou:
        pass
    first.put_object(Bucket=bucket, Key=key, Body=b"hello", Metadata={"mixedcase": "v"})
    for endpoint in endpoints:
        c = client(endpoint)
        head = c.head_object(Bucket=bucket, Key=key)
        got = c.get_object(Bucket=bucket, Key=key)
        got["Body"].read()
        print(json.dumps({
            "endpoint": endpoint,
            "head": sorted(head["Metadata"]),
            "get": sorted(got["Metadata"]),
            "presigned_get": c.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300),
        }), flush=True)


if __name__ == "__main__":
    main()
