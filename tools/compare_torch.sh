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

torch_step() {   # threads, extra bench_torch.py options -> median seconds
    $py tools/bench_torch.py --threads "$1" --no-w2v2 --no-extract --profile 0 --steps "$steps" --json $2 2>/dev/null |
        $py -c 'import json, sys; d = json.load(sys.stdin); print("%.4f" % [r for r in d["runs"] if r["mode"] == "train"][0]["median_s"])' 2>/dev/null
}
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "small joint step (alpha 0.5, 8 x 2 s + 8 images), $rounds interleaved rounds per thread count"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
for th in $threads; do
    cs=""; ts=""; lits=""
    for r in $(seq 1 "$rounds"); do
        c=$(OMP_PROC_BIND=true ./train --bench-step --threads "$th" 2>/dev/null |
            sed -n 's/.*joint step, [0-9]* threads*: \([0-9.]*\) s\/step.*/\1/p')
        t=$(torch_step "$th" "")
        if [ -z "$c" ] || [ -z "$t" ]; then echo "compare_torch: round $r, $th threads: a run failed (C '$c', PyTorch '$t')" >&2; exit 1; fi
        line=$(printf '  %d thread(s), round %d: ssl_vgs %.3f s   PyTorch %.3f s   (%.2fx)' "$th" "$r" "$c" "$t" "$(awk -v a="$t" -v b="$c" 'BEGIN {print a / b}')")
        if [ "$literal" = 1 ]; then
            l=$(torch_step "$th" --fairseq-quantizer)
            if [ -z "$l" ]; then echo "compare_torch: round $r, $th threads: the literal PyTorch run failed" >&2; exit 1; fi
            line="$line$(printf '   literal fairseq %.3f s (%.2fx)' "$l" "$(awk -v a="$l" -v b="$c" 'BEGIN {print a / b}')")"
            lits="$lits $l"
        fi
        echo "$line"
        cs="$cs $c"; ts="$ts $t"
    done
    mc=$(echo $cs | tr ' ' '\n' | median); mt=$(echo $ts | tr ' ' '\n' | median)
    printf '%d thread(s): median ssl_vgs %.3f s, PyTorch %.3f s: %.2fx faster\n' "$th" "$mc" "$mt" "$(awk -v a="$mt" -v b="$mc" 'BEGIN {print a / b}')"
    if [ "$literal" = 1 ]; then
        ml=$(echo $lits | tr ' ' '\n' | median)
        printf '%d thread(s): median literal fairseq PyTorch %.3f s: %.2fx\n' "$th" "$ml" "$(awk -v a="$ml" -v b="$mc" 'BEGIN {print a / b}')"
    fi
done
