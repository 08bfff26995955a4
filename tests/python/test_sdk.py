"""The official Tencent COS Python SDK (cos-python-sdk-v5) against `cosmount serve`.

Run by the Rust test `server_python` with the server's address in the
environment (COSMOUNT_TEST_ADDR=127.0.0.1:PORT, COSMOUNT_TEST_BUCKET,
COSMOUNT_TEST_SECRET_ID, COSMOUNT_TEST_SECRET_KEY), or by hand:

    .venv/bin/python tests/python/test_sdk.py 127.0.0.1:PORT

The SDK keeps the real virtual-hosted Host header
(<bucket>.cos.ap-guangzhou.myqcloud.com) while connecting to IP:Port.
"""

import hashlib
import io
import os
import sys
import tempfile
import unittest

from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

REGION = "ap-guangzhou"
ADDR = os.environ.get("COSMOUNT_TEST_ADDR", "")
BUCKET = os.environ.get("COSMOUNT_TEST_BUCKET", "test-1250000000")
SECRET_ID = os.environ.get("COSMOUNT_TEST_SECRET_ID", "AKIDcosmountTEST0000")
SECRET_KEY = os.environ.get("COSMOUNT_TEST_SECRET_KEY", "cosmount-test-secret-key-0000")

TRICKY_KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign",
    "per%cent",
    "hash#tag",
    "question?mark",
    "tilde~x",
    "中文/文件.txt",
    "a//b",
    "a/./b",
    "a/../b",
    "dir/",
]


def make_client(secret_key=SECRET_KEY):
    host, port = ADDR.rsplit(":", 1)
    config = CosConfig(
        IP=host,
        Port=int(port),
        Scheme="http",
        Region=REGION,
        SecretId=SECRET_ID,
        SecretKey=secret_key,
    )
    return CosS3Client(config, retry=0)


def body_for(key):
    return ("contents of %r\n" % key).encode("utf-8") * 5


def read_body(response):
    return response["Body"].get_raw_stream().read()


class SdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = make_client()

    def list_all(self, prefix="", delimiter="", max_keys=1000):
        keys, prefixes, marker, pages = [], [], "", 0
        while True:
            page = self.client.list_objects(
                Bucket=BUCKET, Prefix=prefix, Delimiter=delimiter, Marker=marker, MaxKeys=max_keys
            )
            pages += 1
            keys += [c["Key"] for c in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            if page["IsTruncated"] != "true":
                return keys, prefixes, pages
            marker = page["NextMarker"]

    def test_simple_operations_with_tricky_keys(self):
        c = self.client
        for key in TRICKY_KEYS:
            data = body_for(key)
            put = c.put_object(
                Bucket=BUCKET, Key=key, Body=data, ContentType="text/plain", Metadata={"x-cos-meta-mode": "33188"}
            )
            self.assertEqual(put["ETag"], '"%s"' % hashlib.md5(data).hexdigest(), key)
            head = c.head_object(Bucket=BUCKET, Key=key)
            self.assertEqual(int(head["Content-Length"]), len(data), key)
            self.assertEqual(head["Content-Type"], "text/plain", key)
            self.assertEqual(head["x-cos-meta-mode"], "33188", key)
            self.assertIn("x-cos-hash-crc64ecma", head)
            got = c.get_object(Bucket=BUCKET, Key=key, KeySimplifyCheck=False)
            self.assertEqual(read_body(got), data, key)
            part = c.get_object(Bucket=BUCKET, Key=key, Range="bytes=2-9", KeySimplifyCheck=False)
            self.assertEqual(read_body(part), data[2:10], key)
            self.assertEqual(part["Content-Range"], "bytes 2-9/%d" % len(data))

        keys, _, _ = self.list_all()
        for key in TRICKY_KEYS:
            self.assertIn(key, keys)

        for key in TRICKY_KEYS:
            dst = key + ".copy"
            source = {"Bucket": BUCKET, "Key": key, "Region": REGION}
            c.copy_object(Bucket=BUCKET, Key=dst, CopySource=source)
            self.assertEqual(c.head_object(Bucket=BUCKET, Key=dst)["x-cos-meta-mode"], "33188")
            c.copy_object(
                Bucket=BUCKET,
                Key=dst,
                CopySource={"Bucket": BUCKET, "Key": dst, "Region": REGION},
                CopyStatus="Replaced",
                Metadata={"x-cos-meta-mode": "16877"},
                ContentType="application/x-directory",
            )
            head = c.head_object(Bucket=BUCKET, Key=dst)
            self.assertEqual(head["x-cos-meta-mode"], "16877", dst)
            self.assertEqual(head["Content-Type"], "application/x-directory", dst)
            got = c.get_object(Bucket=BUCKET, Key=dst, KeySimplifyCheck=False)
            self.assertEqual(read_body(got), body_for(key), dst)

        result = c.delete_objects(
            Bucket=BUCKET, Delete={"Object": [{"Key": k + ".copy"} for k in TRICKY_KEYS], "Quiet": "false"}
        )
        self.assertEqual(len(result.get("Deleted", [])), len(TRICKY_KEYS))
        self.assertFalse(result.get("Error"))
        for key in TRICKY_KEYS:
            c.delete_object(Bucket=BUCKET, Key=key)
            with self.assertRaises(CosServiceError) as ctx:
                c.head_object(Bucket=BUCKET, Key=key)
            self.assertEqual(ctx.exception.get_status_code(), 404)
        keys, _, _ = self.list_all()
        for key in TRICKY_KEYS:
            self.assertNotIn(key, keys)

    def test_listing_with_prefix_delimiter_and_pagination(self):
        c = self.client
        keys = ["list/d%d/f%03d" % (i % 3, i) for i in range(60)] + ["list/top one", "list/中"]
        for key in keys:
            c.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        listed, prefixes, pages = self.list_all(prefix="list/", max_keys=7)
        self.assertEqual(listed, sorted(keys))
        self.assertEqual(prefixes, [])
        self.assertEqual(pages, 9)
        listed, prefixes, pages = self.list_all(prefix="list/", delimiter="/", max_keys=2)
        self.assertEqual(listed, ["list/top one", "list/中"])
        self.assertEqual(prefixes, ["list/d0/", "list/d1/", "list/d2/"])
        self.assertEqual(pages, 3)
        result = c.delete_objects(Bucket=BUCKET, Delete={"Object": [{"Key": k} for k in keys], "Quiet": "true"})
        self.assertFalse(result.get("Deleted"))
        self.assertEqual(self.list_all(prefix="list/")[0], [])

    def test_low_level_multipart(self):
        c = self.client
        key = "multi/中文 part+s"
        parts = [os.urandom(1024 * 1024 + 17), os.urandom(1024 * 1024 + 5), os.urandom(1000)]
        upload_id = c.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="text/plain")["UploadId"]
        done = []
        for n, data in enumerate(parts, start=1):
            r = c.upload_part(Bucket=BUCKET, Key=key, Body=data, PartNumber=n, UploadId=upload_id)
            self.assertEqual(r["ETag"], '"%s"' % hashlib.md5(data).hexdigest())
            done.append({"PartNumber": n, "ETag": r["ETag"]})
        listed = c.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
        self.assertEqual([int(p["PartNumber"]) for p in listed["Part"]], [1, 2, 3])
        result = c.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Part": done}
        )
        self.assertTrue(result["ETag"].strip('"').endswith("-3"), result)
        got = c.get_object(Bucket=BUCKET, Key=key)
        self.assertEqual(read_body(got), b"".join(parts))
        self.assertEqual(got["Content-Type"], "text/plain")

    def test_high_level_upload_and_download(self):
        c = self.client
        data = os.urandom(5 * 1024 * 1024 + 123)
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "src.bin")
            with open(src, "wb") as f:
                f.write(data)
            for key in ["files/big file+1.bin", "files/中文.bin"]:
                c.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=src, PartSize=1, MAXThread=4, EnableMD5=True)
                head = c.head_object(Bucket=BUCKET, Key=key)
                self.assertEqual(int(head["Content-Length"]), len(data))
                self.assertTrue(head["ETag"].strip('"').endswith("-6"), head["ETag"])
                dst = os.path.join(tmp, "dst.bin")
                c.download_file(Bucket=BUCKET, Key=key, DestFilePath=dst, PartSize=1, MAXThread=4, EnableCRC=True)
                with open(dst, "rb") as f:
                    self.assertEqual(hashlib.md5(f.read()).hexdigest(), hashlib.md5(data).hexdigest(), key)
                os.remove(dst)
            small = os.path.join(tmp, "small.txt")
            with open(small, "wb") as f:
                f.write(b"tiny")
            c.upload_file(Bucket=BUCKET, Key="files/small.txt", LocalFilePath=small, PartSize=1)
            self.assertEqual(read_body(c.get_object(Bucket=BUCKET, Key="files/small.txt")), b"tiny")
            c.upload_file_from_buffer(Bucket=BUCKET, Key="files/buffer", Body=io.BytesIO(b"buffered"), PartSize=1)
            self.assertEqual(read_body(c.get_object(Bucket=BUCKET, Key="files/buffer")), b"buffered")

    def test_wrong_secret_key_is_refused(self):
        wrong = make_client(secret_key="not-the-secret-key")
        with self.assertRaises(CosServiceError) as ctx:
            wrong.put_object(Bucket=BUCKET, Key="nope", Body=b"x")
        self.assertEqual(ctx.exception.get_error_code(), "SignatureDoesNotMatch")
        self.assertEqual(ctx.exception.get_status_code(), 403)
        with self.assertRaises(CosServiceError) as ctx:
            wrong.list_objects(Bucket=BUCKET)
        self.assertEqual(ctx.exception.get_error_code(), "SignatureDoesNotMatch")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ADDR = sys.argv.pop(1)
    if not ADDR:
        sys.exit("give the server address: COSMOUNT_TEST_ADDR=127.0.0.1:PORT or an argument")
    unittest.main(verbosity=2)
