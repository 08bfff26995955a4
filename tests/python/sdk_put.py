"""Writes one object with the official COS Python SDK: `sdk_put.py KEY
[STORAGE_CLASS]`, the body on standard input, the server in the environment as for
test_sdk.py (COSMOUNT_TEST_ADDR, _BUCKET, _SECRET_ID, _SECRET_KEY).
Prints the new ETag. Used by the Rust tests as "another client"."""

import sys

from test_sdk import BUCKET, make_client

extra = {"StorageClass": sys.argv[2]} if len(sys.argv) > 2 else {}
response = make_client().put_object(
    Bucket=BUCKET, Key=sys.argv[1], Body=sys.stdin.buffer.read(), **extra
)
print(response["ETag"].strip('"'))
