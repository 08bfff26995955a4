"""boto3 (the AWS SDK for Python) as an independent S3 client of the tests'
SeaweedFS: create-bucket, put KEY META_JSON (body on stdin), head KEY...
(prints JSON). Endpoint, bucket and keys come from S3_TOOL_* variables."""

import json
import os
import sys

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_TOOL_ENDPOINT"],
        aws_access_key_id=os.environ["S3_TOOL_KEY_ID"],
        aws_secret_access_key=os.environ["S3_TOOL_SECRET"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def main():
    s3, bucket = client(), os.environ["S3_TOOL_BUCKET"]
    command, args = sys.argv[1], sys.argv[2:]
    if command == "create-bucket":
        s3.create_bucket(Bucket=bucket)
    elif command == "put":
        key, meta = args[0], json.loads(args[1])
        s3.put_object(Bucket=bucket, Key=key, Body=sys.stdin.buffer.read(), Metadata=meta)
    elif command == "head":
        out = {}
        for key in args:
            h = s3.head_object(Bucket=bucket, Key=key)
            out[key] = {
                "size": h["ContentLength"],
                "content_type": h.get("ContentType"),
                "metadata": h["Metadata"],
            }
        print(json.dumps(out))
    else:
        sys.exit(f"unknown command {command}")


main()
