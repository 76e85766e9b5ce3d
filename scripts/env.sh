# Shared paths and tool settings; sourced by every script and by the Makefile's shell helpers.
# Everything built or downloaded lives outside the repo, in OPTPROBE_CACHE.
: "${OPTPROBE_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/optprobe}"
export OPTPROBE_CACHE
export PATH="/usr/lib/llvm-19/bin:$OPTPROBE_CACHE/bindgen/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# The host crate's cargo target lives outside the repo: a module clean
# (make M=<repo> clean) deletes every *.o and *.a below the module directory,
# cargo's included, even while cargo is linking (run-tests runs both at once).
OPTPROBE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="$OPTPROBE_CACHE/host-target/$(printf %s "$OPTPROBE_REPO" | sha256sum | cut -c1-12)"
BUSYBOX="$OPTPROBE_CACHE/busybox-arm64"
GUEST_BASH="$OPTPROBE_CACHE/guest-bash"
BINDGEN="$OPTPROBE_CACHE/bindgen/bin/bindgen"
# The source directory is keyed by the Debian package version, so an update unpacks anew.
ksrc_ver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null | tr '~:' '__' || echo none)
KSRC="$OPTPROBE_CACHE/src/linux-$ksrc_ver"
