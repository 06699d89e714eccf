#!/usr/bin/env bash
# Speed of data-parallel training on this machine (docs/MPI.md): the same run as 1 process x 2
# threads, 2 processes x 1 thread and 2 processes x 2 threads (4 threads on 2 cores:
# oversubscribed), in interleaved rounds (ROUNDS, default 3) so that a change of the machine's
# load hits all three alike. Per run: seconds per update (train's own average, data loading
# excluded; two decimals), and from process 0's log the time it spent inside the collectives (waiting for the
# other process included) and the bytes it sent into them, per update.
# Usage: bash tools/bench_mpi.sh TRAINER [CONFIG] [BATCH] [STEPS]   (default tiny 8 30)
#   TRAINER: a train built with make MPI=1 (make bench-mpi builds build/train_mpi and runs this)
set -u
cd "$(dirname "$0")/.."
TM=${1:?usage: bash tools/bench_mpi.sh TRAINER [CONFIG] [BATCH] [STEPS]}
CONFIG=${2:-tiny}; BATCH=${3:-8}; STEPS=${4:-30}; ROUNDS=${ROUNDS:-3}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
T=$(mktemp -d /tmp/sv_bench_mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT
D=builtin:images=200,val_images=10,test_images=10,ood_utts=16
A="--config $CONFIG --data $D --batch $BATCH --steps $STEPS --eval-every 1000000 --ckpt-every 0 --log-every $STEPS --seed 1"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(uname -m), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $TM: config $CONFIG, batch $BATCH, $STEPS updates, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
    for run in "1 2" "2 1" "2 2"; do
        set -- $run; P=$1; TH=$2
        out="$T/r$r-$P-$TH"
        # mpirun gives the processes a terminal (train then draws a bar): the shell in between
        # sends process 0's lines to a file (the others print nothing)
        OUTF="$out.txt" OMP_NUM_THREADS=$TH mpirun -q --oversubscribe --bind-to none -np "$P" \
            sh -c 'exec "$0" "$@" >> "$OUTF" 2>&1' "$TM" $A --threads "$TH" --out "$out" \
            || { echo "run $P x $TH failed: $(grep 'train:' "$out.txt" | head -2)"; exit 1; }
        sps=$(grep -o '[0-9.]* s/step' "$out.txt" | tail -1 | cut -d' ' -f1)
        comm=$(grep '"kind":"train"' "$out/log.jsonl" | sed -n 's/.*"comm_s":\([0-9.e+-]*\),"comm_mb":\([0-9.e+-]*\).*/\1 \2/p' \
               | awk '{s+=$1; b+=$2; n++} END {if (n) printf "%.4f s, %.3f MB", s/n, b/n; else printf "-"}')
        printf 'round %d: %d process(es) x %d thread(s): %s s/update = %.2f updates/s; in collectives per update: %s\n' \
            "$r" "$P" "$TH" "$sps" "$(awk -v s="$sps" 'BEGIN {print (s > 0) ? 1 / s : 0}')" "$comm"
    done
done
# the gradient all-reduce alone (no waiting for a slower process): built by make bench-mpi
BA=$(dirname "$TM")/bench_allreduce
if [ -x "$BA" ]; then
    case $CONFIG in tiny) WORDS=730033;; small) WORDS=14935873;; base) WORDS=182637185;; *) WORDS=730033;; esac
    for r in $(seq 1 "$ROUNDS"); do mpirun -q --bind-to none -np 2 "$BA" "$WORDS"; done   # the preset's floats + a status word
fi
