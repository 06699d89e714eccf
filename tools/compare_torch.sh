#!/bin/bash
# compare_torch.sh -- the `small` joint training step, ssl_vgs against PyTorch, interleaved.
#
# On these shared VMs both the machine's speed and PyTorch's step time drift between runs (a
# PyTorch median of 0.9 s in one run and 1.4 s in the next is common), so one C run next to one
# PyTorch run gives a ratio that is off by as much. This alternates the two, ROUNDS times per
# thread count, and reports each side's median over the rounds and their ratio.
#
#   make train && bash tools/compare_torch.sh            # ROUNDS=5 THREADS="2 1" STEPS=10
#
# LITERAL=1 adds a third program to every round: the PyTorch step with fairseq's literal
# codevector lookup (broadcast one-hot x codebook, then a sum over V; bench_torch.py's
# --fairseq-quantizer) instead of the default per-group bmm we wrote to give PyTorch its best.
# The literal transcription is about twice as slow and is what issue #10's calibration
# (about 2.1 s on 2 threads) matches.
#
# CPU=1 (with THREADS=1) compares CPU seconds per step instead of wall seconds: on a machine busy
# with other work a one-thread step's wall time grows by however long other processes hold the
# core, its CPU time only by their cache pollution.
#
# BF16=1 (the default where the CPU has AVX512-BF16) adds both sides' bf16 mixed-precision
# step to every round: ./train --precision bf16 and bench_torch.py --bf16 (torch.autocast on the
# CPU; oneDNN's bf16 kernels), and reports their ratio too.
#
# First it prints which BLAS and which kernels PyTorch runs on (tools/torch_probe.py), and it
# refuses to report a ratio when PyTorch's fp32 products run on the reference (netlib) BLAS:
# with only libblas3 installed, Debian's torch loads it and looks about six times slower than it is.
#
# Needs Debian's python3-torch (/usr/bin/python3); never needed by the library or its tests.
set -u
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
threads=${THREADS:-"2 1"}
steps=${STEPS:-10}
literal=${LITERAL:-0}
py=/usr/bin/python3
if [ ! -x ./train ]; then echo "compare_torch: ./train is not built (run: make train)" >&2; exit 1; fi
if ! $py -c 'import torch' 2>/dev/null; then
    echo "compare_torch: $py cannot import torch (install Debian's python3-torch)" >&2; exit 1
fi
unset OPENBLAS_CORETYPE   # forces OpenBLAS's slower Haswell kernels on these machines
cpu=${CPU:-0}
tkey=median_s
if [ "$cpu" = 1 ]; then
    [ "$threads" = 1 ] || { echo "compare_torch: CPU=1 (CPU time per step) only means something with THREADS=1" >&2; exit 1; }
    tkey=cpu_median_s
fi
bf16=${BF16:-auto}   # auto: when the CPU has AVX512-BF16 (./train must then have been built with -march=native)
if [ "$bf16" = auto ]; then if grep -qw avx512_bf16 /proc/cpuinfo; then bf16=1; else bf16=0; fi; fi

echo "PyTorch's kernels (tools/torch_probe.py):"
first_th=${threads%% *}
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS="$first_th" $py tools/torch_probe.py --threads "$first_th" | sed 's/^/  /'
if [ "${PIPESTATUS[0]}" = 3 ]; then
    echo "compare_torch: refusing to report a ratio against the reference BLAS (see above)" >&2; exit 1
fi

torch_step() {   # threads, extra bench_torch.py options -> median seconds (wall, or CPU with CPU=1)
    $py tools/bench_torch.py --threads "$1" --no-w2v2 --no-extract --profile 0 --steps "$steps" --json $2 2>/dev/null |
        $py -c 'import json, sys; d = json.load(sys.stdin); r = [r for r in d["runs"] if r["mode"] == "train"][0]; print("%.4f" % r["'"$tkey"'"])' 2>/dev/null
}
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
c_step() {   # threads, precision -> seconds per step (wall, or CPU with CPU=1)
    OMP_PROC_BIND=true ./train --bench-step --threads "$1" --precision "$2" 2>/dev/null |
        if [ "$cpu" = 1 ]; then sed -n 's/.*joint step.*(CPU \([0-9.]*\) s\/step).*/\1/p'
        else sed -n 's/.*joint step[ (bf16)]*, [0-9]* threads*: \([0-9.]*\) s\/step.*/\1/p'; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "small joint step (alpha 0.5, 8 x 2 s + 8 images), $rounds interleaved rounds per thread count$([ "$cpu" = 1 ] && echo ", CPU seconds per step")"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$bf16" = 1 ] || echo "(no bf16 runs: BF16=0, or the CPU has no AVX512-BF16)"
for th in $threads; do
    cs=""; ts=""; lits=""; cbs=""; tbs=""
    for r in $(seq 1 "$rounds"); do
        c=$(c_step "$th" fp32)
        t=$(torch_step "$th" "")
        if [ -z "$c" ] || [ -z "$t" ]; then echo "compare_torch: round $r, $th threads: a run failed (C '$c', PyTorch '$t')" >&2; exit 1; fi
        line=$(printf '  %d thread(s), round %d: ssl_vgs %.3f s   PyTorch %.3f s   (%.2fx)' "$th" "$r" "$c" "$t" "$(ratio "$t" "$c")")
        if [ "$bf16" = 1 ]; then
            cb=$(c_step "$th" bf16)
            tb=$(torch_step "$th" --bf16)
            if [ -z "$cb" ] || [ -z "$tb" ]; then echo "compare_torch: round $r, $th threads: a bf16 run failed (C '$cb', PyTorch '$tb'; is ./train built with -march=native?)" >&2; exit 1; fi
            line="$line$(printf '   bf16: ssl_vgs %.3f s   PyTorch autocast %.3f s   (%.2fx)' "$cb" "$tb" "$(ratio "$tb" "$cb")")"
            cbs="$cbs $cb"; tbs="$tbs $tb"
        fi
        if [ "$literal" = 1 ]; then
            l=$(torch_step "$th" --fairseq-quantizer)
            if [ -z "$l" ]; then echo "compare_torch: round $r, $th threads: the literal PyTorch run failed" >&2; exit 1; fi
            line="$line$(printf '   literal fairseq %.3f s (%.2fx)' "$l" "$(ratio "$l" "$c")")"
            lits="$lits $l"
        fi
        echo "$line"
        cs="$cs $c"; ts="$ts $t"
    done
    mc=$(echo $cs | tr ' ' '\n' | median); mt=$(echo $ts | tr ' ' '\n' | median)
    printf '%d thread(s): median ssl_vgs %.3f s, PyTorch %.3f s: %.2fx faster\n' "$th" "$mc" "$mt" "$(ratio "$mt" "$mc")"
    if [ "$bf16" = 1 ]; then
        mcb=$(echo $cbs | tr ' ' '\n' | median); mtb=$(echo $tbs | tr ' ' '\n' | median)
        printf '%d thread(s): bf16 median ssl_vgs %.3f s, PyTorch autocast %.3f s: %.2fx faster; bf16 vs fp32: ssl_vgs %.2fx, PyTorch %.2fx\n' \
            "$th" "$mcb" "$mtb" "$(ratio "$mtb" "$mcb")" "$(ratio "$mc" "$mcb")" "$(ratio "$mt" "$mtb")"
    fi
    if [ "$literal" = 1 ]; then
        ml=$(echo $lits | tr ' ' '\n' | median)
        printf '%d thread(s): median literal fairseq PyTorch %.3f s: %.2fx\n' "$th" "$ml" "$(ratio "$ml" "$mc")"
    fi
done
