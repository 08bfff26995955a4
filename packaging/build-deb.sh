#!/usr/bin/env bash
# Builds the cosmount Debian package with dpkg-deb (no cargo-deb needed).
#
#   packaging/build-deb.sh [--binary PATH] [--out DIR] [--compression xz|gzip|none]
#
# Without --binary it runs `cargo build --release` and packages
# target/release/cosmount. The binary is stripped; the man page is the
# committed man/cosmount.1 (regenerate it with
# `UPDATE_MAN=1 cargo test man_page`). Prints the path of the .deb.
#
# Contents:
#   /usr/bin/cosmount
#   /usr/share/man/man1/cosmount.1.gz
#   /lib/systemd/system/cosmount@.service     (disabled until you enable it)
#   /usr/share/doc/cosmount/examples/         mnt-cos.mount, fstab,
#                                             passwd-cosfs, cosmount@.conf
#   /usr/share/doc/cosmount/copyright, README.md
# Depends on fuse3 (mount.fuse3 runs `mount -t fuse.cosmount`, fusermount3
# lets users mount) and on the shared libraries dpkg-shlibdeps finds.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
binary=""
out="$repo/target/debian"
compression="xz"

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --compression) compression="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

for tool in dpkg-deb dpkg-shlibdeps strip; do
    if ! command -v "$tool" >/dev/null; then
        echo "build-deb.sh: $tool is missing (apt-get install dpkg-dev)" >&2
        exit 1
    fi
done

if [ -z "$binary" ]; then
    cargo build --release --manifest-path "$repo/Cargo.toml" >&2
    binary="$repo/target/release/cosmount"
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)"
arch="$(dpkg --print-architecture)"
name="cosmount_${version}_${arch}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/debian/cosmount"
doc="$root/usr/share/doc/cosmount"

install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
    "$root/lib/systemd/system" "$doc/examples"
install -m 755 "$binary" "$root/usr/bin/cosmount"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/cosmount"
gzip -9n -c "$repo/man/cosmount.1" > "$root/usr/share/man/man1/cosmount.1.gz"
install -m 644 "$here/systemd/cosmount@.service" "$root/lib/systemd/system/"
install -m 644 "$here/systemd/mnt-cos.mount" "$here/deb/fstab" \
    "$here/deb/passwd-cosfs" "$here/deb/cosmount@.conf" "$doc/examples/"
install -m 644 "$here/deb/copyright" "$doc/"
install -d "$root/etc/logrotate.d"
install -m 644 "$here/logrotate/cosmount" "$root/etc/logrotate.d/cosmount"
echo /etc/logrotate.d/cosmount > "$root/DEBIAN/conffiles"
if [ -f "$repo/README.md" ]; then
    install -m 644 "$repo/README.md" "$doc/"
fi

# Shared-library dependencies, as debhelper would compute them.
shlibs="$(cd "$work" && touch debian/control &&
    dpkg-shlibdeps -O -e"debian/cosmount/usr/bin/cosmount" |
    sed -n 's/^shlibs:Depends=//p')"
depends="fuse3${shlibs:+, $shlibs}"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"

sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" \
    -e "s/@DEPENDS@/$depends/" -e "s/@SIZE@/$size/" \
    "$here/deb/control" > "$root/DEBIAN/control"

mkdir -p "$out"
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$out/$name.deb" >&2
echo "$out/$name.deb"
