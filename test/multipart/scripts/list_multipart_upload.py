#!/usr/bin/env python3
"""The logic of ceph/s3-tests' test_list_multipart_upload (s3tests_boto3),
with Debian's boto3: two multipart uploads of one key (5 MiB and 6 MiB of
parts) and one of another key, none completed; then one bucket-wide
ListMultipartUploads must list all three; then all three are aborted.

Usage: list_multipart_upload.py <endpoint-url> <bucket>

The bucket is created if missing. Prints one JSON object: the upload ids
created, the ids the listing returned, and the ids missing from it. The
exit status is 0 whenever the S3 calls succeed: the Go test decides.
"""
import json
import os
import sys

import boto3
from botocore.config import Config

MB = 1024 * 1024


def multipart_upload(client, bucket, key, size):
    """Create an upload and send its parts (5 MiB each, the last one
    shorter), without completing it, as s3-tests' _multipart_upload does."""
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part_size = 5 * MB
    sent, number = 0, 1
    while sent < size:
        n = min(part_size, size - sent)
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=os.urandom(n))
        sent += n
        number += 1
    return upload_id


def main():
    endpoint, bucket = sys.argv[1], sys.argv[2]
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass

    key, key2 = "mymultipart", "mymultipart2"
    created = [
        (key, multipart_upload(client, bucket, key, 5 * MB)),
        (key, multipart_upload(client, bucket, key, 6 * MB)),
        (key2, multipart_upload(client, bucket, key2, 5 * MB)),
    ]

    response = client.list_multipart_uploads(Bucket=bucket)
    listed = [u["UploadId"] for u in response.get("Uploads", [])]
    missing = [uid for _, uid in created if uid not in listed]

    for k, uid in created:
        client.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=uid)

    json.dump({"created": [uid for _, uid in created], "listed": listed, "missing": missing,
               "listed_keys": [u["Key"] for u in response.get("Uploads", [])]}, sys.stdout)


if __name__ == "__main__":
    main()
