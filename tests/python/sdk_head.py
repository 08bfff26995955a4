"""Reads objects' headers with the official COS Python SDK:
`sdk_head.py KEY...`, the server in the environment as for test_sdk.py.
Prints one JSON object: each key's x-cos-meta-* headers, checksums,
storage class (absent: STANDARD), encryption (absent: none), Content-Type
and the other standard headers an object keeps, so
the Rust tests check what another client (cosfs, an SDK user) reads."""

import json
import sys

from test_sdk import BUCKET, make_client

client = make_client()
out = {}
for key in sys.argv[1:]:
    head = client.head_object(Bucket=BUCKET, Key=key)
    out[key] = {
        name.lower(): value
        for name, value in head.items()
        if name.lower().startswith("x-cos-meta-")
        or name.lower()
        in (
            "etag",
            "x-cos-hash-crc64ecma",
            "x-cos-storage-class",
            "x-cos-server-side-encryption",
            "x-cos-server-side-encryption-cos-kms-key-id",
            "content-type",
            "cache-control",
            "content-disposition",
            "content-encoding",
            "content-language",
            "expires",
        )
    }
print(json.dumps(out))
