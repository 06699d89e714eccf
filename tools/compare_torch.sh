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
# Needs Debian's python3-torch (/usr/bin/python3); never needed by the library or its tests.
set -u
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
threads=${THREADS:-"2 1"}
steps=${STEPS:-10}
py=/usr/bin/python3
if [ ! -x ./train ]; then echo "compare_torch: ./train is not built (run: make train)" >&2; exit 1; fi
if ! $py -c 'import torch' 2>/dev/null; then
    echo "compare_torch: $py cannot import torch (install Debian's python3-torch)" >&2; exit 1
fi
unset OPENBLAS_CORETYPE   # forces OpenBLAS's slower Haswell kernels on these machines

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "small joint step (alpha 0.5, 8 x 2 s + 8 images), $rounds interleaved rounds per thread count"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
for th in $threads; do
    cs=""; ts=""
    for r in $(seq 1 "$rounds"); do
        c=$(OMP_PROC_BIND=true ./train --bench-step --threads "$th" 2>/dev/null |
            sed -n 's/.*joint step, [0-9]* threads*: \([0-9.]*\) s\/step.*/\1/p')
        t=$($py tools/bench_torch.py --threads "$th" --no-w2v2 --no-extract --profile 0 --steps "$steps" --json 2>/dev/null |
            $py -c 'import json, sys; d = json.load(sys.stdin); print("%.4f" % [r for r in d["runs"] if r["mode"] == "train"][0]["median_s"])' 2>/dev/null)
        if [ -z "$c" ] || [ -z "$t" ]; then echo "compare_torch: round $r, $th threads: a run failed (C '$c', PyTorch '$t')" >&2; exit 1; fi
        printf '  %d thread(s), round %d: ssl_vgs %.3f s   PyTorch %.3f s   (%.2fx)\n' "$th" "$r" "$c" "$t" "$(awk -v a="$t" -v b="$c" 'BEGIN {print a / b}')"
        cs="$cs $c"; ts="$ts $t"
    done
    mc=$(echo $cs | tr ' ' '\n' | median); mt=$(echo $ts | tr ' ' '\n' | median)
    printf '%d thread(s): median ssl_vgs %.3f s, PyTorch %.3f s: %.2fx faster\n' "$th" "$mc" "$mt" "$(awk -v a="$mt" -v b="$mc" 'BEGIN {print a / b}')"
done
