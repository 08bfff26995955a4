"""Writes one object with the official COS Python SDK: `sdk_put.py KEY
[NAME=VALUE...]` (put_object's own arguments: StorageClass,
ServerSideEncryption, SSEKMSKeyId, ...), the body on standard input, the
server in the environment as for test_sdk.py (COSMOUNT_TEST_ADDR, _BUCKET,
_SECRET_ID, _SECRET_KEY).
Prints the new ETag. Used by the Rust tests as "another client"."""

import sys

from test_sdk import BUCKET, make_client

extra = dict(arg.split("=", 1) for arg in sys.argv[2:])
response = make_client().put_object(
    Bucket=BUCKET, Key=sys.argv[1], Body=sys.stdin.buffer.read(), **extra
)
print(response["ETag"].strip('"'))
