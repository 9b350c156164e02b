#!/usr/bin/env bash
# Build the libFuzzer harnesses with clang (-fsanitize=fuzzer,address,undefined)
# against src/*.c directly (not through CMake; src/main.c and the CLI in src/cli/ are
# left out: the harnesses call the library functions).
#
#   tests/fuzz/build.sh [--seeds] [OUTDIR]     (default OUTDIR: build-fuzz)
#
# Produces OUTDIR/fuzz_journal, OUTDIR/fuzz_parsers and OUTDIR/mkseeds.
# --seeds also regenerates the committed seed corpora in tests/fuzz/corpus/
# (deterministic: the same bytes every time).
#
# Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev;
# installed with apt-get when missing and running as root) and libacl headers
# (libacl1-dev).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
seeds=0
if [ "${1:-}" = --seeds ]; then
	seeds=1
	shift
fi
out=${1:-$repo/build-fuzz}
case $out in /*) ;; *) out=$PWD/$out ;; esac
CC=${CC_FUZZ:-clang}

have_fuzzer_rt() {
	command -v "$CC" >/dev/null 2>&1 &&
		echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' |
		"$CC" -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1
}
if ! have_fuzzer_rt; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "fuzz/build.sh: installing clang and libclang-rt-14-dev" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev >&2; }
	fi
	have_fuzzer_rt || { echo "fuzz/build.sh: $CC with -fsanitize=fuzzer is not available" >&2; exit 1; }
fi

mkdir -p "$out"
srcs=()
for f in "$repo"/src/*.c; do
	case $(basename "$f") in main.c) continue ;; esac
	srcs+=("$f")
done
flags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
	-DVOLPERM_VERSION='"fuzz"' -I"$repo/include" -I"$repo/src" -Wall -Wextra -Wno-unused-parameter)
# shellcheck disable=SC2054 # commas inside clang's option values
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
libs=(-lacl)

# The library once, instrumented for coverage (fuzzer-no-link), then each harness.
objdir=$out/obj
mkdir -p "$objdir"
objs=()
for f in "${srcs[@]}"; do
	o=$objdir/$(basename "$f" .c).o
	"$CC" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer-no-link -c "$f" -o "$o"
	objs+=("$o")
done
for h in fuzz_journal fuzz_parsers; do
	"$CC" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer "$here/$h.c" "${objs[@]}" "${libs[@]}" -o "$out/$h"
	echo "built $out/$h"
done
"$CC" "${flags[@]}" "${san[@]}" "$here/mkseeds.c" "${objs[@]}" "${libs[@]}" -o "$out/mkseeds"
echo "built $out/mkseeds"
if [ $seeds = 1 ]; then
	rm -rf "$here/corpus"
	"$out/mkseeds" "$here/corpus"
	echo "seeds: $(find "$here/corpus/journal" -type f | wc -l) journal, $(find "$here/corpus/parsers" -type f | wc -l) parsers in $here/corpus"
fi
