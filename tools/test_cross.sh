#!/usr/bin/env bash
# make test-cross: the tests on other CPUs, built with Debian's cross compilers and run under
# qemu-user (Windows: mingw-w64, run under wine when it is installed, else compiled only).
#   aarch64  gcc-aarch64-linux-gnu + qemu-aarch64   NEON kernels; little-endian, 64-bit
#   s390x    gcc-s390x-linux-gnu   + qemu-s390x     big-endian, 64-bit; scalar kernels, float
#                                                   expressions evaluated in double
#   i686     gcc-i686-linux-gnu                     32-bit size_t and long, x87 floating point;
#                                                   run natively where this x86-64 kernel runs
#                                                   32-bit programs, else under qemu-i386
#   mingw    gcc-mingw-w64-x86-64 (+ wine64)        Windows: LLP64, no POSIX; AVX2+FMA kernels
# Each target compiles the header warning-free (C99 -pedantic -Werror), the drivers and test.c,
# then runs test.c's SV_TEST_CROSS subset (kt_cross_skip in test.c says what it leaves out).
# Files cross hosts both ways: the native build writes WAV/NPY/checkpoint fixtures, each target
# must write byte-identical ones and read the native ones to the same bits, and the native build
# then reads each target's. The targets build and run in parallel (qemu runs one guest thread per
# host thread; OMP_NUM_THREADS=1 keeps emulated OpenMP from spinning, tests that compare thread
# counts still start their own threads). A missing compiler or emulator skips its target with a
# line saying so; a failed compile or test fails the run. CROSS_TARGETS="aarch64 s390x" picks.
set -u
cd "$(dirname "$0")/.."
OUT=build/cross
TARGETS=${CROSS_TARGETS:-"aarch64 s390x i686 mingw"}
FLAGS="-std=c99 -O2 -Wall -Wextra -pedantic"
export SV_TEST_CROSS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
rm -rf "$OUT"
mkdir -p "$OUT/files/native"
T0=$(date +%s)

# The header alone as C99 with -Werror, then the test program and the drivers (warnings shown).
build() {   # build NAME CC "EXTRA_FLAGS" "LIBS" EXT
    local name=$1 cc=$2 extra=$3 libs=$4 ext=$5 d="$OUT/$1" f
    printf '#define SSL_VGS_IMPLEMENTATION\n#include "../../../ssl_vgs.h"\nint main(void){return sv_get_threads() < 1;}\n' > "$d/c99.c"
    $cc $FLAGS -Werror $extra -o "$d/c99$ext" "$d/c99.c" $libs || { echo "FAIL: the header does not compile warning-free"; return 1; }
    $cc $FLAGS $extra -o "$d/test_sv$ext" test.c $libs || { echo "FAIL: test.c does not compile"; return 1; }
    for f in train eval demo; do
        $cc $FLAGS $extra -o "$d/$f$ext" $f.c $libs || { echo "FAIL: $f.c does not compile"; return 1; }
    done
}

# The subset against the native fixtures, writing this target's own (ONLY: those groups only).
run() {   # run NAME RUNNER...
    local name=$1 rc=0 g TIMEFORMAT="%0R s wall, %0U s CPU"; shift
    mkdir -p "$OUT/files/$name"
    { time for g in ${ONLY:-all}; do
          [ "$g" = all ] && g=
          SV_TEST_FILES_IN="$OUT/files/native" SV_TEST_FILES_OUT="$OUT/files/$name" \
              "$@" "$OUT/$name/test_sv${EXE:-}" $g >> "$OUT/$name/test.log" 2>&1 || rc=1
      done; } 2> "$OUT/$name/time"
    grep -E '^FAIL|^ssl_vgs tests|passed, .* failed|files of|32-bit build' "$OUT/$name/test.log"
    [ $rc = 0 ] || echo "FAIL: tests failed (log: $OUT/$name/test.log)"
    echo "tests ran in $(tail -1 "$OUT/$name/time")"
    return $rc
}

target() {   # one target, start to end; prints its report, returns non-zero on failure
    local t=$1 cc q t0=$(date +%s) runner wine
    mkdir -p "$OUT/$t"
    case $t in
    aarch64|s390x|i686)
        cc=$t-linux-gnu-gcc; q=qemu-$t; [ $t = i686 ] && q=qemu-i386
        command -v $cc >/dev/null || { echo "skipped: needs $cc (apt-get install gcc-$t-linux-gnu)"; return 0; }
        build $t $cc -fopenmp -lm "" || return 1
        echo "built in $(( $(date +%s) - t0 )) s"
        runner="$q -L /usr/$t-linux-gnu"
        if [ $t = i686 ] && /usr/i686-linux-gnu/lib/ld-linux.so.2 --library-path /usr/i686-linux-gnu/lib "$OUT/i686/c99" 2>/dev/null; then
            runner="/usr/i686-linux-gnu/lib/ld-linux.so.2 --library-path /usr/i686-linux-gnu/lib"
            echo "runs natively: a 32-bit process on this x86-64 kernel"
        elif ! command -v $q >/dev/null; then
            echo "compiled only: no $q (apt-get install qemu-user)"; return 0
        elif [ $t = i686 ]; then
            # qemu's x87 and 32-bit atomics make the whole subset take an hour: the 32-bit groups
            echo "under qemu-i386: the 32-bit groups only (io, byte_order, portable_files, size_overflow)"
            ONLY="io byte_order portable_files size_overflow" EXE= run $t $runner; return
        fi
        EXE= run $t $runner
        ;;
    mingw)
        cc=x86_64-w64-mingw32-gcc
        command -v $cc >/dev/null || { echo "skipped: needs $cc (apt-get install gcc-mingw-w64-x86-64)"; return 0; }
        # static: no libgomp/libwinpthread DLLs to find under wine; AVX2+FMA: the x86 SIMD path
        # that runs on most Windows machines
        build mingw $cc "-fopenmp -mavx2 -mfma" "-static -lm" .exe || return 1
        echo "built in $(( $(date +%s) - t0 )) s"
        wine=$(command -v wine64 || command -v wine || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; })
        [ -n "$wine" ] || { echo "compiled only: no wine (apt-get install wine64 runs the tests)"; return 0; }
        export WINEDEBUG=-all WINEPREFIX="$PWD/$OUT/wineprefix"
        EXE=.exe run mingw "$wine"
        ;;
    *) echo "FAIL: unknown target"; return 1 ;;
    esac
}

# the native build writes the fixtures the targets read
[ -x ./test_sv ] || make -s test_sv >/dev/null || { echo "FAIL test-cross: native test_sv does not build"; exit 1; }
SV_TEST_FILES_OUT="$OUT/files/native" ./test_sv portable_files > "$OUT/native_writes.log" 2>&1 ||
    { cat "$OUT/native_writes.log"; echo "FAIL test-cross: the native build cannot write the fixtures"; exit 1; }

for t in $TARGETS; do
    ( target $t > "$OUT/$t.report" 2>&1 || touch "$OUT/$t.failed" ) &
done
wait
fail=0
for t in $TARGETS; do
    echo "== test-cross $t"
    sed 's/^/  /' "$OUT/$t.report"
    [ -f "$OUT/$t.failed" ] && fail=1
done

# the reverse direction: the native build reads what the targets wrote (s390x: big-endian)
for d in "$OUT"/files/*; do
    n=$(basename "$d")
    { [ "$n" = native ] || [ ! -f "$d/model.ckpt" ]; } && continue
    if SV_TEST_FILES_IN="$d" ./test_sv portable_files > "$OUT/native_reads_$n.log" 2>&1; then
        echo "== test-cross native: reads the files of $n ($(grep -o '[0-9] of [0-9] byte-identical' "$OUT/native_reads_$n.log"))"
    else
        grep FAIL "$OUT/native_reads_$n.log" | sed 's/^/  /'
        echo "FAIL test-cross: the native build cannot read the files of $n (log: $OUT/native_reads_$n.log)"
        fail=1
    fi
done
echo "== test-cross: $([ $fail = 0 ] && echo "passed" || echo FAILED) in $(( $(date +%s) - T0 )) s"
exit $fail
