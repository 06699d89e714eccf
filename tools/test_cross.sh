#!/usr/bin/env bash
# make test-cross: the tests on other CPUs, built with Debian's cross compilers and run under
# qemu-user (Windows: mingw-w64, run under wine when it is installed, else compiled only).
#   aarch64  gcc-aarch64-linux-gnu + qemu-aarch64   NEON kernels, little-endian, 64-bit
#   s390x    gcc-s390x-linux-gnu   + qemu-s390x     big-endian, 64-bit (scalar kernels)
#   i686     gcc-i686-linux-gnu    + qemu-i386      32-bit size_t and long, x87 floating point
#   mingw    gcc-mingw-w64-x86-64  (+ wine)         Windows: LLP64, no POSIX, AVX2 kernels
# Each build must compile the header warning-free (C99, -pedantic -Werror) and the drivers, then
# runs test.c's SV_TEST_CROSS subset (see kt_cross_skip in test.c). Files cross hosts both ways:
# the native build writes WAV/NPY/checkpoint fixtures, each other build must write byte-identical
# files and read the native ones to the same bits, and the native build then reads theirs.
# A missing compiler or emulator skips that target with a line saying so (exit 0); a failed
# compile or test fails the run. CROSS_TARGETS="aarch64 s390x" picks targets.
set -u
cd "$(dirname "$0")/.."
OUT=build/cross
TARGETS=${CROSS_TARGETS:-"aarch64 s390x i686 mingw"}
FLAGS="-std=c99 -O2 -Wall -Wextra -pedantic"
export SV_TEST_CROSS=1 OMP_WAIT_POLICY=passive
fail=0
rm -rf "$OUT"
mkdir -p "$OUT/files/native"

now() { date +%s; }
note() { echo "== test-cross: $*"; }
bad() { echo "FAIL test-cross: $*"; fail=1; }

# The header alone as C99 with -Werror, then the test program and the drivers (warnings shown).
build() {   # build NAME CC EXTRA_FLAGS LIBS EXT
    local name=$1 cc=$2 extra=$3 libs=$4 ext=$5 d="$OUT/$1" f
    mkdir -p "$d"
    printf '#define SSL_VGS_IMPLEMENTATION\n#include "../../../ssl_vgs.h"\nint main(void){return sv_get_threads() < 1;}\n' > "$d/c99.c"
    $cc $FLAGS -Werror $extra -o "$d/c99$ext" "$d/c99.c" $libs || { bad "$name: the header does not compile warning-free"; return 1; }
    $cc $FLAGS $extra -o "$d/test_sv$ext" test.c $libs || { bad "$name: test.c does not compile"; return 1; }
    for f in train eval demo; do
        $cc $FLAGS $extra -o "$d/$f$ext" $f.c $libs || { bad "$name: $f.c does not compile"; return 1; }
    done
}

# Runs the subset: reads the native files, writes its own, which must be byte-identical.
run() {   # run NAME RUNNER...
    local name=$1; shift
    local log="$OUT/$name/test.log" rc TIMEFORMAT="%0R s wall, %0U s CPU"
    mkdir -p "$OUT/files/$name"
    { time SV_TEST_FILES_IN="$OUT/files/native" SV_TEST_FILES_OUT="$OUT/files/$name" "$@" "$OUT/$name/test_sv${EXE:-}" > "$log" 2>&1; } 2> "$OUT/$name/time"
    rc=$?
    grep -E '^FAIL|^ssl_vgs tests|passed, .* failed|files of|32-bit build' "$log" | sed "s/^/  $name: /"
    [ $rc = 0 ] || bad "$name: tests failed (log: $log)"
    note "$name ran in $(tail -1 "$OUT/$name/time")"
}

# the native build writes the fixtures other hosts read
[ -x ./test_sv ] || make -s test_sv >/dev/null || { bad "native test_sv does not build"; exit 1; }
SV_TEST_FILES_OUT="$OUT/files/native" ./test_sv portable_files | tail -1 | sed 's/^/  native: /'

for t in $TARGETS; do
    case $t in
    aarch64|s390x|i686)
        cc=$t-linux-gnu-gcc; q=qemu-$t; [ $t = i686 ] && q=qemu-i386
        if ! command -v $cc >/dev/null || ! command -v $q >/dev/null; then
            note "$t skipped: needs $cc and $q (apt-get install gcc-$t-linux-gnu qemu-user)"; continue
        fi
        t0=$(now)
        build $t $cc -fopenmp -lm "" || continue
        note "$t built in $(( $(now) - t0 )) s"
        EXE= run $t $q -L /usr/$t-linux-gnu
        ;;
    mingw)
        cc=x86_64-w64-mingw32-gcc
        if ! command -v $cc >/dev/null; then note "mingw skipped: needs $cc (apt-get install gcc-mingw-w64-x86-64)"; continue; fi
        t0=$(now)
        # static: no libgomp/libwinpthread DLLs to find under wine; AVX2+FMA: the x86 SIMD path
        # that runs on most Windows machines
        build mingw $cc "-fopenmp -mavx2 -mfma" "-static -lm" .exe || continue
        note "mingw built in $(( $(now) - t0 )) s"
        wine=$(command -v wine64 || command -v wine || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; })
        if [ -z "$wine" ]; then note "mingw: compiled only (no wine: apt-get install wine64 to run the tests)"; continue; fi
        export WINEDEBUG=-all WINEPREFIX="$PWD/$OUT/wineprefix"
        EXE=.exe run mingw "$wine"
        ;;
    *) bad "unknown target $t" ;;
    esac
done

# the reverse direction: the native build reads what the others wrote (s390x: big-endian)
for d in "$OUT"/files/*; do
    n=$(basename "$d")
    [ "$n" = native ] || [ ! -f "$d/model.ckpt" ] && continue
    SV_TEST_FILES_IN="$d" ./test_sv portable_files > "$OUT/native_reads_$n.log" 2>&1 || bad "native build cannot read the files of $n (log: $OUT/native_reads_$n.log)"
    grep -E '^FAIL|files of' "$OUT/native_reads_$n.log" | sed 's/^/  native: /'
done
[ $fail = 0 ] && note "all targets passed" || note "FAILED"
exit $fail
