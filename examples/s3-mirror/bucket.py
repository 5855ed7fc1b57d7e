"""The mirror recipe's bucket: create it if missing, or list what it holds.

    python examples/s3-mirror/bucket.py create|list

The bucket is $MIRROR_BUCKET at $S3_ENDPOINT, with the standard AWS credentials
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/…), as folderd's S3 sink uses them.
"""

from __future__ import annotations

import os
import sys

import boto3
from botocore.exceptions import ClientError


def main(argv: list[str]) -> int:
    if argv[1:] not in (["create"], ["list"]) or not os.environ.get("MIRROR_BUCKET"):
        print("usage: MIRROR_BUCKET=… S3_ENDPOINT=… bucket.py create|list", file=sys.stderr)
        return 2
    name = os.environ["MIRROR_BUCKET"]
    s3 = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT") or None)
    if argv[1] == "create":
        try:
            s3.head_bucket(Bucket=name)
        except ClientError:
            s3.create_bucket(Bucket=name)
            print(f"created bucket {name}")
        return 0
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            count += 1
            print(f"{obj['Size']:>12}  {obj['Key']}")
    print(f"{count} object(s) in s3://{name}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
