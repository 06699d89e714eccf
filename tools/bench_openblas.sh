#!/bin/sh
# Calibrates sv_gemm against OpenBLAS cblas_sgemm on the model's GEMM shapes, 1 and 2 threads.
# Needs OpenBLAS:  apt-get update && apt-get install -y libopenblas-dev
# OPENBLAS_CORETYPE is unset: forcing Haswell halves OpenBLAS on AVX-512 machines.
# Each measurement runs in its own process, OpenBLAS and sv_gemm alternating per shape, so the
# two libraries' worker threads never compete and both see the same background load.
# Usage: tools/bench_openblas.sh [ROUNDS]   (best of ROUNDS alternating runs, default 2)
set -e
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE
ROUNDS=${1:-2}
CC=${CC:-gcc}
INC=""
for d in /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas /usr/include/aarch64-linux-gnu/openblas-pthread; do
    [ -f "$d/cblas.h" ] && INC="-I$d" && break
done
if ! echo 'int main(void){return 0;}' | $CC -x c - -o /dev/null -lopenblas 2>/dev/null; then
    echo "OpenBLAS is missing: apt-get update && apt-get install -y libopenblas-dev" >&2
    exit 1
fi
BIN=${TMPDIR:-/tmp}/sv_bench_openblas.$$
trap 'rm -f "$BIN"' EXIT
$CC -std=c99 -O3 -march=native -fopenmp $INC tools/bench_openblas.c -o "$BIN" -lopenblas -lm
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 1.0)}' /proc/loadavg; then
    echo "WARNING: the machine is busy (load average > 1): 2-thread figures will be unreliable."
    echo "  With other processes on the cores, OpenMP's spin-waiting workers lose their core for whole"
    echo "  time slices; OMP_WAIT_POLICY=passive makes sv_gemm degrade gracefully in that case."
fi
echo "GFLOP/s, best of $ROUNDS alternating runs (each the median of 5 samples); ratio = sv_gemm / OpenBLAS"
printf "%-20s %6s %5s %5s %3s | %8s %8s %6s | %8s %8s %6s\n" shape M N K op "sv 1T" "OB 1T" ratio "sv 2T" "OB 2T" ratio
"$BIN" list | while read -r idx what M N K op; do
    line=$(printf "%-20s %6s %5s %5s %3s" "$what" "$M" "$N" "$K" "$op")
    for t in 1 2; do
        sv=0; ob=0; r=0
        while [ "$r" -lt "$ROUNDS" ]; do
            o=$("$BIN" openblas "$idx" "$t"); s=$("$BIN" sv "$idx" "$t")
            ob=$(echo "$ob $o" | awk '{print ($2 > $1) ? $2 : $1}')
            sv=$(echo "$sv $s" | awk '{print ($2 > $1) ? $2 : $1}')
            r=$((r + 1))
        done
        line="$line | $(echo "$sv $ob" | awk '{printf "%8.1f %8.1f %6.2f", $1, $2, $1 / $2}')"
    done
    echo "$line"
done
