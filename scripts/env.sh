# Shared paths and tool settings; sourced by every script and by the Makefile's shell helpers.
# Everything built or downloaded lives outside the repo, in OPTPROBE_CACHE.
: "${OPTPROBE_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/optprobe}"
export OPTPROBE_CACHE
export PATH="/usr/lib/llvm-19/bin:$OPTPROBE_CACHE/bindgen/bin:$PATH"
# bindgen's libclang: bootstrap's clang 19, unless the caller chose one or this
# machine has no clang 19 (a chroot with another: bindgen then finds its own).
if [ -z "${LIBCLANG_PATH:-}" ] && [ -d /usr/lib/llvm-19/lib ]; then
    export LIBCLANG_PATH=/usr/lib/llvm-19/lib
fi
# The host crate's cargo target lives outside the repo: a module clean
# (make M=<repo> clean) deletes every *.o and *.a below the module directory,
# cargo's included, even while cargo is linking (run-tests runs both at once).
OPTPROBE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="$OPTPROBE_CACHE/host-target/$(printf %s "$OPTPROBE_REPO" | sha256sum | cut -c1-12)"
BUSYBOX="$OPTPROBE_CACHE/busybox-arm64"
GUEST_BASH="$OPTPROBE_CACHE/guest-bash"
BINDGEN="$OPTPROBE_CACHE/bindgen/bin/bindgen"
# Which kernel the scripts build, boot and build against: OPTPROBE_KERNEL=6.12
# (default: bookworm's linux-source-6.12) or 7.2 (sid's linux-source-7.2,
# fetched by scripts/bootstrap through a private apt configuration).
: "${OPTPROBE_KERNEL:=6.12}"
export OPTPROBE_KERNEL
# sid's apt state, kept apart from the system's: scripts/sid-apt uses it.
SID_APT="$OPTPROBE_CACHE/apt-sid"
# The source directory is keyed by the Debian package version, so an update unpacks anew.
case "$OPTPROBE_KERNEL" in
    6.12) ksrc_ver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null | tr '~:' '__' || echo none)
          KSRC_TARBALL_DEB="";;
    7.2)  KSRC_TARBALL_DEB=$({ ls "$SID_APT"/debs/linux-source-7.2_*_all.deb 2>/dev/null || true; } | sort -V | tail -1)
          ksrc_ver=$(basename "${KSRC_TARBALL_DEB:-none}" | sed -n 's/^linux-source-7\.2_\(.*\)_all\.deb$/\1/p' | tr '~:+' '___')
          ksrc_ver=7.2-${ksrc_ver:-none};;
    *)    echo "env.sh: OPTPROBE_KERNEL=$OPTPROBE_KERNEL: only 6.12 and 7.2 are known" >&2
          ksrc_ver=none KSRC_TARBALL_DEB="";;
esac
KSRC="$OPTPROBE_CACHE/src/linux-$ksrc_ver"
