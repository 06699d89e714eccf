#!/usr/bin/env bash
# make test-mpi: data-parallel training over MPI. `mpirun -np P ./train` (make MPI=1) must end
# with the checkpoints of the one-process run, byte for byte: P = 1..4 over a batch of 7 pairs
# (shares 7, 3+4, 2+2+3, 1+2+2+2) across a schedule switch, 3 processes streaming a corpus
# folder's audio, and a run stopped and resumed with
# other process counts (3 -> 2 -> the plain one-process build). A process that dies, or one with
# another build or other settings, ends the job with one clear line from process 0, and a
# process count above the batch is refused. Options are checked by every process (one refused on
# one process alone ends all), and every process must resolve the same ones (also on --resume,
# where the checkpoint's stored settings are restored): all but --threads. Skips (exit 0, one line) without mpicc/mpirun.
# Usage (the Makefile's): bash tools/test_mpi.sh 'COMPILE COMMAND FOR THE MPI TRAINER' PATH_OF_IT
set -u
cd "$(dirname "$0")/.."
CMD=${1:?compile command}
TM=${2:?MPI trainer path}
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
    echo "test-mpi: skipped: mpicc or mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"
    exit 0
fi
[ -x ./train ] || { echo "test-mpi: ./train is missing (make train)"; exit 1; }
echo "test-mpi: $CMD"
eval "$CMD" || { echo "test-mpi: the MPI trainer does not build"; exit 1; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1                      # 4 processes on a 2-core machine: one thread each
MPIRUN="timeout 300 mpirun --oversubscribe --bind-to none"   # a job that hangs fails the test
T=$(mktemp -d /tmp/sv_test_mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "  ok: $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL: $1"; }
same() { # same FILE_A FILE_B WHAT
    if [ -f "$1" ] && [ -f "$2" ] && cmp -s "$1" "$2"; then ok "$3"; else bad "$3 ($1 vs $2)"; fi
}

D=builtin:images=24,val_images=4,test_images=4,ood_utts=16
A="--config tiny --data $D --batch 7 --steps 6 --switch 3 --scenario w2v2,vgs+ --eval-every 100 --ckpt-every 2 --seed 5 --quiet"

# the reference: the plain build, one process
./train $A --out "$T/ref" >"$T/ref.out" 2>&1 || { bad "one-process reference run: $(tail -1 "$T/ref.out")"; }
./train $A --out "$T/ref2" --stop-after 2 >"$T/ref2.out" 2>&1 || bad "one-process run to step 2: $(tail -1 "$T/ref2.out")"

for P in 1 2 3 4; do
    if $MPIRUN -np $P "$TM" $A --out "$T/p$P" >"$T/p$P.out" 2>&1; then
        same "$T/ref/switch.ckpt" "$T/p$P/switch.ckpt" "$P process(es): the switch checkpoint equals one process's"
        same "$T/ref/final.ckpt" "$T/p$P/final.ckpt" "$P process(es): the final checkpoint equals one process's"
    else
        bad "$P process(es) ran: $(grep 'train:' "$T/p$P.out" | head -1)"
    fi
done
grep -q '"procs":4,"comm_s":' "$T/p4/log.jsonl" 2>/dev/null && ok "the log of 4 processes records the time and bytes of the exchanges" \
    || bad "no communication figures in $T/p4/log.jsonl"

# a corpus folder: several processes stream its audio (each reads the files of its share only;
# test.c's disk_batches proves that of a shard), one process loads it; the same bits
./train --write-builtin "$T/corp" --images 24 --val-images 4 --test-images 4 --seed 3 --quiet >"$T/corp.out" 2>&1 \
    || bad "writing a corpus folder: $(tail -1 "$T/corp.out")"
C="${A/--data $D/--data $T/corp}"
./train $C --out "$T/cref" >"$T/cref.out" 2>&1 || bad "one process on the folder: $(tail -1 "$T/cref.out")"
if $MPIRUN -np 3 "$TM" $C --out "$T/c3" >"$T/c3.out" 2>&1; then
    same "$T/cref/final.ckpt" "$T/c3/final.ckpt" "3 processes streaming a corpus folder: the final checkpoint equals one process's (audio loaded)"
else
    bad "3 processes on a corpus folder ran: $(grep 'train:' "$T/c3.out" | head -1)"
fi

# stopped with 3 processes before the switch, resumed with 2 to after it, finished by the plain build
$MPIRUN -np 3 "$TM" $A --out "$T/r" --stop-after 2 >"$T/r1.out" 2>&1 || bad "3 processes, --stop-after 2: $(tail -1 "$T/r1.out")"
$MPIRUN -np 2 "$TM" --resume "$T/r" --stop-after 4 --quiet >"$T/r2.out" 2>&1 || bad "2 processes resume to step 4: $(tail -1 "$T/r2.out")"
./train --resume "$T/r" --quiet >"$T/r3.out" 2>&1 || bad "one process finishes the resumed run: $(tail -1 "$T/r3.out")"
same "$T/ref/final.ckpt" "$T/r/final.ckpt" "stopped with 3 processes, resumed with 2, finished with 1: the final checkpoint equals one run's"

# a process with other settings, and one of another build: one line from process 0, nothing trained
one_line() { # one_line OUTFILE PATTERN WHAT
    local n
    n=$(grep -c '^train:' "$1")
    if grep -q "$2" "$1" && [ "$n" = 1 ]; then ok "$3"; else bad "$3 (expected one 'train:' line with '$2'; got $n: $(grep '^train:' "$1" | head -3 | tr '\n' '|'))"; fi
}
if $MPIRUN -np 1 "$TM" $A --out "$T/m1" : -np 1 "$TM" ${A/--seed 5/--seed 6} --out "$T/m1" >"$T/m1.out" 2>&1; then
    bad "processes with other seeds were not refused"
else
    one_line "$T/m1.out" "process 1 has other settings than process 0 (seed = 6; process 0: seed = 5)" "processes with other seeds: refused in one line naming the seed"
fi
[ ! -f "$T/m1/last.ckpt" ] && ok "nothing was trained" || bad "a checkpoint was written"
# (before the check, a process with another --stop-after waited forever for the others)
if $MPIRUN -np 1 "$TM" $A --out "$T/m3" : -np 1 "$TM" $A --out "$T/m3" --stop-after 3 >"$T/m3.out" 2>&1; then
    bad "processes with another --stop-after were not refused"
else
    one_line "$T/m3.out" "process 1 has other settings than process 0 (stop-after = 3; process 0: stop-after = 0)" \
        "a process with another --stop-after: refused in one line naming it"
fi
if $MPIRUN -np 1 "$TM" $A --out "$T/m4" : -np 1 "$TM" ${A/--batch 7/--batch 0} --out "$T/m4" >"$T/m4.out" 2>&1; then
    bad "an option refused by process 1 alone did not end the job"
else
    one_line "$T/m4.out" "process 1: --batch: 0 is out of range" "an option refused by process 1 alone: its line, printed once by process 0"
fi
# on --resume the stored settings come back on every process: one given another --lr is refused
cp -r "$T/ref2" "$T/m5"
if $MPIRUN -np 1 "$TM" --resume "$T/m5" --quiet : -np 1 "$TM" --resume "$T/m5" --quiet --lr 0.5 >"$T/m5.out" 2>&1; then
    bad "a resumed process with another --lr was not refused"
else
    one_line "$T/m5.out" "process 1: --lr" "resumed with another --lr on process 1: refused in one line"
fi
cmp -s "$T/ref2/last.ckpt" "$T/m5/last.ckpt" && ok "the refused resume left the checkpoint as it was" || bad "the refused resume changed last.ckpt"
# --threads alone may differ between processes (no number depends on it)
if $MPIRUN -np 1 "$TM" $A --out "$T/th" --threads 2 : -np 1 "$TM" $A --out "$T/th" --threads 1 >"$T/th.out" 2>&1; then
    same "$T/ref/final.ckpt" "$T/th/final.ckpt" "2 processes with 2 and 1 threads: the final checkpoint equals one process's"
else
    bad "2 processes with different --threads ran: $(grep 'train:' "$T/th.out" | head -1)"
fi
SCALAR=${TM}_scalar
if eval "${CMD/-o $TM/-o $SCALAR} -DSV_NO_SIMD -O1"; then
    if $MPIRUN -np 1 "$TM" $A --out "$T/m2" : -np 1 "$SCALAR" $A --out "$T/m2" >"$T/m2.out" 2>&1; then
        bad "processes of different builds were not refused"
    else
        one_line "$T/m2.out" "process 1 runs another build than process 0" "a process of another build (scalar kernels): refused in one line"
    fi
    rm -f "$SCALAR"
else
    bad "the scalar MPI trainer does not build"
fi

# a process dies (SIGKILL before update 3): one line from process 0, the checkpoint of update 2 intact
if SV_MPI_TEST_KILL=2:3 $MPIRUN -np 3 "$TM" $A --out "$T/k" >"$T/k.out" 2>&1; then
    bad "the job went on after a process died"
else
    one_line "$T/k.out" "if a process died (mpirun names it), the job ends here and the last checkpoint stays intact" "a process killed at update 3: one line from process 0"
    same "$T/ref2/last.ckpt" "$T/k/last.ckpt" "its last checkpoint (update 2) is intact and equals one process's"
fi

# the plain build started by mpirun would train alone in every process, into one folder
if $MPIRUN -np 2 ./train $A --out "$T/pl" >"$T/pl.out" 2>&1; then
    bad "the build without MPI ran under mpirun -np 2"
else
    one_line "$T/pl.out" "started as one of 2 processes (mpirun/srun), but this train is built without MPI" \
        "the build without MPI under mpirun -np 2: refused in one line"
fi
[ ! -e "$T/pl" ] && ok "... before it wrote anything" || bad "the plain build under mpirun wrote $T/pl"

# a SIGTERM that reaches process 1 alone (after update 3): every process stops after the same
# update, process 0 checkpoints it and prints the resume line; resumed, the run ends as one run
if SV_MPI_TEST_KILL=1:3:term $MPIRUN -np 2 "$TM" $A --out "$T/t" >"$T/t.out" 2>&1; then
    bad "the job went on after a SIGTERM to process 1"
else
    one_line "$T/t.out" "interrupted by SIGTERM: checkpoint written; resume with: mpirun -np P ./train --resume" \
        "SIGTERM to process 1 alone: every process stops, one line from process 0"
    grep -q '"step":4,' "$T/t/log.jsonl" && ! grep -q '"step":5,' "$T/t/log.jsonl" \
        && ok "... after update 4, logged" || bad "the stopped run's log does not end at update 4"
    $MPIRUN -np 3 "$TM" --resume "$T/t" --quiet >"$T/t2.out" 2>&1 || bad "3 processes resume after the SIGTERM: $(tail -1 "$T/t2.out")"
    same "$T/ref/final.ckpt" "$T/t/final.ckpt" "stopped by a SIGTERM to one process, resumed with 3: the final checkpoint equals one run's"
fi

# more processes than pairs in a batch
if $MPIRUN -np 4 "$TM" ${A/--batch 7/--batch 3} --out "$T/b" >"$T/b.out" 2>&1; then
    bad "4 processes for a batch of 3 were not refused"
else
    one_line "$T/b.out" "4 processes for a batch of 3 pairs" "4 processes for a batch of 3 pairs: refused in one line"
fi

echo "test-mpi: $pass passed, $fail failed"
[ "$fail" = 0 ]
