#!/usr/bin/env bash
# Driver tests (run by make test): bad input to train, eval, demo and data_prep.sh is refused
# with one line on stderr, a non-zero exit and no data read; a resumed run restores every
# setting; SIGTERM and kill -9 leave a resumable run and a whole log; data errors name file and
# line; results never come from stale inputs. Prints "drivers.sh: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=$(mktemp -d /tmp/sv_drivers_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # bit-identical for any thread count; quick on a busy host
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# expect NAME STATUS TEXT CMD...: CMD exits with STATUS and prints exactly one line on stderr,
# containing TEXT; with a data spec that would take hours to build (BIG), an error that comes
# after "loading data" is a failure too (every option is checked before any data is read).
expect() {
    local name="$1" want="$2" pat="$3" rc n
    shift 3
    timeout 120 "$@" > "$T/out" 2> "$T/err" < /dev/null
    rc=$?
    n=$(wc -l < "$T/err")
    if [ "$rc" != "$want" ]; then bad "$name: exit $rc, expected $want: $(head -c 300 "$T/err")"
    elif ! grep -qF -- "$pat" "$T/err"; then bad "$name: no '$pat' in: $(head -c 300 "$T/err")"
    elif [ "$n" != 1 ]; then bad "$name: $n lines on stderr: $(head -c 400 "$T/err")"
    elif grep -q "^loading data" "$T/out"; then bad "$name: data was loaded before the error"
    else ok; fi
}
# expect_first NAME STATUS TEXT CMD...: as expect, but only the first stderr line is checked
# (data_prep.sh follows a missing-tool error with its install lines)
expect_first() {
    local name="$1" want="$2" pat="$3" rc
    shift 3
    timeout 120 "$@" > "$T/out" 2> "$T/err" < /dev/null
    rc=$?
    if [ "$rc" != "$want" ]; then bad "$name: exit $rc, expected $want: $(head -c 300 "$T/err")"
    elif ! head -n 1 "$T/err" | grep -qF -- "$pat"; then bad "$name: no '$pat' in the first line of: $(head -c 300 "$T/err")"
    else ok; fi
}

# expect_last NAME STATUS TEXT CMD...: as expect_first, for the last stderr line (eval reports its
# progress on stderr before the error)
expect_last() {
    local name="$1" want="$2" pat="$3" rc
    shift 3
    timeout 120 "$@" > "$T/out" 2> "$T/err" < /dev/null
    rc=$?
    if [ "$rc" != "$want" ]; then bad "$name: exit $rc, expected $want: $(tail -c 300 "$T/err")"
    elif ! tail -n 1 "$T/err" | grep -qF -- "$pat"; then bad "$name: no '$pat' in the last line of: $(tail -c 300 "$T/err")"
    else ok; fi
}

BIG=builtin:images=2000000          # hours to generate: must never be reached by a bad option
TR="./train --data $BIG"
D=builtin:images=24,val_images=4,test_images=4,ood_utts=16
TQ0="./train --quiet --batch 2 --crop 1 --eval-batches 1"
TQ="$TQ0 --data $D"

# ================================================================ train: numbers and choices
expect "steps trailing garbage" 2 "--steps: '10x' is not a whole number" $TR --steps 10x
expect "steps negative" 2 "--steps: '-5' is not a whole number >= 0" $TR --steps -5
expect "steps zero" 2 "--steps: 0 is out of range" $TR --steps 0
expect "steps huge" 2 "--steps: 99999999999 is out of range" $TR --steps 99999999999
expect "steps float" 2 "--steps: '1.5' is not a whole number" $TR --steps 1.5
expect "lr not a number" 2 "--lr: 'abc' is not a number" $TR --lr abc
expect "lr zero" 2 "--lr: must be above 0" $TR --lr 0
expect "lr nan" 2 "--lr: 'nan' is not a finite number" $TR --lr nan
expect "lr inf" 2 "--lr: 'inf' is not a finite number" $TR --lr inf
expect "lr negative" 2 "--lr: -1e-4 is out of range" $TR --lr -1e-4
expect "lr too large" 2 "--lr: 2 is out of range" $TR --lr 2
expect "lr trailing" 2 "--lr: '1e-4x' is not a number" $TR --lr 1e-4x
expect "crop zero" 2 "--crop: must be above 0" $TR --crop 0
expect "crop shorter than the model needs" 2 "--crop 0.01: 160 samples, fewer than the" $TR --crop 0.01
expect "crop nan" 2 "--crop: 'nan' is not a finite number" $TR --crop nan
expect "batch zero" 2 "--batch: 0 is out of range" $TR --batch 0
expect "batch float" 2 "--batch: '1.5' is not a whole number" $TR --batch 1.5
expect "threads zero" 2 "--threads: 0 is out of range: 1..1024" $TR --threads 0
expect "threads huge" 2 "--threads: 100000 is out of range: 1..1024" $TR --threads 100000
expect "threads negative" 2 "--threads: '-1' is not a whole number" $TR --threads -1
expect "warmup above 1" 2 "--warmup: 1.5 is out of range" $TR --warmup 1.5
expect "wd negative" 2 "--wd: -0.1 is out of range" $TR --wd -0.1
expect "clip nan" 2 "--clip: 'nan' is not a finite number" $TR --clip nan
expect "alpha above 1" 2 "--alpha: 2 is out of range" $TR --alpha 2
expect "alpha without vgs+" 2 "--alpha sets the alpha of vgs+" $TR --scenario w2v2 --alpha 0.3
expect "eval-every zero" 2 "--eval-every: 0 is out of range" $TR --eval-every 0
expect "log-every zero" 2 "--log-every: 0 is out of range" $TR --log-every 0
expect "eval-batches zero" 2 "--eval-batches: 0 is out of range" $TR --eval-batches 0
expect "ckpt-every negative" 2 "--ckpt-every: '-1' is not a whole number" $TR --ckpt-every -1
expect "seed negative" 2 "--seed: '-3' is not a whole number" $TR --seed -3
expect "seed exponent" 2 "--seed: '1e3' is not a whole number" $TR --seed 1e3
expect "stop-after zero" 2 "--stop-after: 0 is out of range" $TR --stop-after 0
expect "stop-after past the end" 2 "--stop-after 10 must be below --steps 10" $TR --steps 10 --stop-after 10
expect "unknown scenario" 2 "unknown scenario 'vgz'" $TR --scenario vgz
expect "schedule of one stage twice" 2 "unknown scenario 'vgs,vgs'" $TR --scenario vgs,vgs
expect "three stages" 2 "unknown scenario" $TR --scenario w2v2,vgs,vgs+
expect "unknown schedule name" 2 "--schedules: 'w2v2-vgz' is not one of the six schedules" $TR --all --schedules w2v2-vgz
expect "schedules without --all" 2 "--schedules goes with --all" $TR --schedules w2v2-vgs
expect "scenario with --all" 2 "--scenario does not apply to --all" $TR --all --scenario vgs
expect "switch not below steps" 2 "--switch 10 must be below --steps 10" $TR --scenario w2v2,vgs --steps 10 --switch 10
expect "switch zero" 2 "--switch: 0 is out of range" $TR --scenario w2v2,vgs --steps 10 --switch 0
expect "switch for a single scenario" 2 "--switch applies to schedules" $TR --scenario vgs --switch 5
expect "schedule with one step" 2 "--steps 1 is too few for a schedule" $TR --scenario w2v2,vgs --steps 1
expect "unknown config" 2 "--config: 'huge' is not one of tiny|small|base" $TR --config huge
# ---- config fields: each range is checked before any data is read
expect "set q_dim=0" 2 "q_dim = 0 is out of range" $TR --set q_dim=0
expect "set mask_prob=nan" 2 "mask_prob: 'nan' is not a finite number" $TR --set mask_prob=nan
expect "set n_negatives=0" 2 "n_negatives = 0 is out of range" $TR --set n_negatives=0
expect "set logit_temp=0" 2 "logit_temp = 0 is out of range" $TR --set logit_temp=0
expect "set dropout=1" 2 "dropout = 1 is out of range [0, 1)" $TR --set dropout=1
expect "set unknown key" 2 "unknown key 'foo'" $TR --set foo=1
expect "set without =" 2 "--set: wants key=value" $TR --set q_dim
expect "set even conv width" 2 "vgs_conv_width = 8 must be odd" $TR --set vgs_conv_width=8
expect "set tau_min above tau_max" 2 "tau_min = 3 is above tau_max" $TR --set tau_min=3
expect "set negative size" 2 "q_dim: '-5' is not a whole number" $TR --set q_dim=-5
expect "set q_vars=1" 2 "q_vars = 1 is out of range" $TR --set q_vars=1
expect "set int overflow" 2 "use_cls: '4294967297' is too large" $TR --set use_cls=4294967297
expect "set float overflow" 2 "margin: '1e50' is not a finite number" $TR --set margin=1e50
expect "set q_dim not divisible" 2 "quantizer dim 63 not divisible by 2 groups" $TR --set q_dim=63
# ---- MT4SSL and --kmeans
expect "ssl unknown" 2 "--ssl: 'hubert' is not one of w2v2|mt4ssl|w2v2+mt4ssl" $TR --ssl hubert
expect "ssl mt4ssl without targets" 2 "--ssl mt4ssl needs offline targets" $TR --ssl mt4ssl
expect "targets without mt4ssl" 2 "--targets is used only by --ssl mt4ssl or w2v2+mt4ssl" $TR --targets "$T"
expect "targets missing" 2 "--targets $T/none: no such folder" $TR --ssl mt4ssl --targets "$T/none"
expect "mt4ssl offline and audio-only" 2 "--audio-only batches have no offline targets" $TR --ssl mt4ssl --targets "$T" --audio-only "$ROOT/Makefile"
expect "set mt4_k=1" 2 "mt4_k = 1 is out of range" $TR --ssl mt4ssl --set mt4_offline_weight=0 --set mt4_k=1
expect "precision unknown" 2 "--precision: 'fp16' is not one of fp32|bf16" $TR --precision fp16
expect "precision through --set" 2 "--set precision: use --precision fp32|bf16" $TR --set precision=bf16
expect "precision twice" 2 "--precision is given twice" $TR --precision bf16 --precision fp32
expect "precision with --bench" 2 "--precision applies to --bench-step" ./train --bench --precision bf16
expect "precision with --write-builtin" 2 "--precision does not apply to --write-builtin" ./train --write-builtin "$T/wb" --precision bf16
expect "two benchmarks" 2 "--bench, --bench-step, --bench-extract and --bench-gemm are different benchmarks" ./train --bench-step --bench-gemm
expect "kmeans k one" 2 "--k: 1 is out of range: 2..65536" ./train --kmeans "$T/km" --k 1
expect "kmeans layer without a checkpoint" 2 "--kmeans-layer needs --kmeans-from CKPT" ./train --kmeans "$T/km" --kmeans-layer 2
expect "kmeans from a missing checkpoint" 2 "--kmeans-from: $T/none.ckpt: no such checkpoint" ./train --kmeans "$T/km" --kmeans-from "$T/none.ckpt"
expect "k without --kmeans" 2 "--k does not apply without --kmeans" $TR --k 5
expect "training option with --kmeans" 2 "--steps does not apply to --kmeans" ./train --kmeans "$T/km" --steps 5
# ---- Hugging Face weights and WAV formats
expect "export-hf without files" 2 "--export-hf needs a checkpoint and an output .safetensors file" ./train --export-hf
expect "export-hf one file" 2 "--export-hf needs a checkpoint and an output .safetensors file" ./train --export-hf a.ckpt
expect "export-hf not safetensors" 2 "--export-hf writes a .safetensors file, not 'b.bin'" ./train --export-hf a.ckpt b.bin
expect "export-hf with training options" 2 "--steps does not apply to --export-hf" ./train --export-hf a.ckpt b.safetensors --steps 3
expect "export-hf with another mode" 2 "are different modes" ./train --export-hf a.ckpt b.safetensors --write-builtin "$T/wb"
expect "init-from missing" 2 "--init-from $T/none.safetensors: No such file or directory" $TR --init-from "$T/none.safetensors"
expect "wav-format unknown" 2 "--wav-format: 'mp3' is not one of pcm16|float32" ./train --write-builtin "$T/wb" --wav-format mp3
expect "wav-format without write-builtin" 2 "--wav-format does not apply without --write-builtin" $TR --wav-format pcm16
expect "bench with config" 2 "--config applies to --bench-step and --bench-extract, not to --bench" ./train --bench --config small
expect "two benchmarks" 2 "--bench, --bench-step, --bench-extract and --bench-gemm are different benchmarks" ./train --bench-step --bench-extract
# ---- data and files
expect "data spec unknown key" 2 "unknown key 'imagez'" ./train --data builtin:imagez=5
expect "data spec not a number" 2 "images: 'abc' is not a whole number" ./train --data builtin:images=abc
expect "data folder missing" 2 "--data $T/none: no such corpus folder" ./train --data "$T/none"
expect "audio-only manifest missing" 2 "--audio-only $T/none.tsv: no such manifest file" $TR --audio-only "$T/none.tsv"
echo "x" > "$T/ao.tsv"
expect "audio-only without an SSL stage" 2 "--audio-only adds wav2vec 2.0 batches, but scenario 'vgs'" $TR --scenario vgs --audio-only "$T/ao.tsv"
# ---- the command line itself
expect "unknown option" 2 "unknown option '--bogus'" $TR --bogus
expect "stray argument" 2 "unexpected argument 'foo'" $TR foo
expect "missing value" 2 "--steps needs a value" $TR --steps
expect "option as a value" 2 "--out needs a value, not the option '--steps'" $TR --out --steps 5
expect "option given twice" 2 "--steps is given twice" $TR --steps 5 --steps 6
expect "builtin option without --write-builtin" 2 "--images does not apply without --write-builtin" $TR --images 10
expect "training option with --write-builtin" 2 "--steps does not apply to --write-builtin" ./train --write-builtin "$T/wb" --steps 5
expect "write-builtin captions zero" 2 "--captions: 0 is out of range: 1..100" ./train --write-builtin "$T/wb" --captions 0
expect "write-builtin no training images" 1 "leave no training images" ./train --write-builtin "$T/wb" --images 10 --val-images 5 --test-images 5
expect "write-builtin regions" 2 "--regions: 'voxels' is not one of detector|pixels" ./train --write-builtin "$T/wb" --regions voxels
check '[ ! -e "$T/wb" ]' "a refused --write-builtin left a folder"
expect "bench with a training option" 2 "--lr does not apply to --bench" ./train --bench --lr 1e-3
# ---- resume and run folders
expect "resume a missing folder" 2 "--resume $T/none: no such folder" ./train --resume "$T/none"
mkdir -p "$T/empty" "$T/nockpt"; echo '{"kind":"meta"}' > "$T/nockpt/log.jsonl"
expect "resume a folder that is no run" 1 "not a run folder" ./train --resume "$T/empty"
expect "resume before the first checkpoint" 1 "has no checkpoint yet" ./train --resume "$T/nockpt"
printf '# ./train settings\nall = 1\nfrobnicate = 3\n' > "$T/empty/study.settings"
expect "resume settings of a newer version" 2 "stores the setting 'frobnicate = 3', which this version of train does not know" ./train --resume "$T/empty"

# ================================================================ eval and demo
expect "eval: no arguments" 2 "give --ckpt PATH, --report RUN..., features or embeddings" ./eval
expect "eval: missing checkpoint" 2 "$T/none.ckpt: no such checkpoint" ./eval --ckpt "$T/none.ckpt"
expect "eval: folder as checkpoint" 2 "$T/empty is a folder, not a checkpoint" ./eval --ckpt "$T/empty"
expect "eval: not a checkpoint" 2 "$T/ao.tsv: not a checkpoint" ./eval --ckpt "$T/ao.tsv"
head -c 100 /dev/zero > "$T/zero.ckpt"
expect "eval: bad magic" 2 "$T/zero.ckpt: not an ssl_vgs checkpoint (bad magic)" ./eval --ckpt "$T/zero.ckpt"
expect "eval: max-batches negative" 2 "--max-batches: '-1' is not a whole number" ./eval --ckpt x --losses --max-batches -1
expect "eval: layer negative" 2 "--layer: '-1' is not a whole number" ./eval --ckpt x --export-zs "$T/zs" --layer -1
expect "eval: seed negative" 2 "--seed: '-3' is not a whole number" ./eval --ckpt x --seed -3
expect "eval: batch zero" 2 "--batch: 0 is out of range" ./eval --ckpt x --batch 0
expect "eval: threads huge" 2 "--threads: 100000 is out of range" ./eval --ckpt x --threads 100000
expect "eval: split train" 2 "--split must be test or val, not 'train'" ./eval --ckpt x --split train
expect "eval: abx split" 2 "--abx-split must be test, ood or both" ./eval --ckpt x --abx --abx-split dev
expect "eval: abx mode" 2 "--abx-mode must be exact or sampled" ./eval --ckpt x --abx --abx-mode fast
expect "eval: layer without export" 2 "--layer and --zs-split apply to --export-zs" ./eval --ckpt x --layer 2
expect "eval: json with losses only" 2 "--json applies to --retrieval and --abx" ./eval --ckpt x --losses --json "$T/j"
expect "eval: option twice" 2 "--ckpt is given twice" ./eval --ckpt x --ckpt y
expect "eval: zs split" 2 "--zs-split must be ood or test" ./eval --ckpt x --export-zs "$T/zs" --zs-split train
expect "eval: unknown option" 2 "unknown option --bogus" ./eval --ckpt x --bogus
expect "eval: bad data spec" 2 "unknown key 'imagez'" ./eval --ckpt x --data builtin:imagez=3
expect "eval: report without runs" 2 "--report needs at least one run folder" ./eval --report
expect "eval: report of no run" 2 "is not a run folder" ./eval --report "$T/empty"
expect "eval: report unknown option" 2 "unknown option for --report: --bogus" ./eval --report "$T/nockpt" --bogus
expect "features: no model" 2 "features: --model is required" ./eval features --layers all
expect "features: model twice" 2 "features: --model is given twice" ./eval features --model a --model b
expect "features: model without value" 2 "features: --model needs a value" ./eval features --model
expect "features: threads zero" 2 "--threads: 0 is out of range: 1..1024" ./eval features --model a --threads 0
expect "features: unknown option" 2 "features: unknown option --bogus" ./eval features --model a --bogus 1
expect "features: bad format" 2 "--format must be npy or zerospeech, not 'wav'" ./eval features --model a --format wav
expect "embeddings: no checkpoint" 2 "embeddings: --ckpt is required" ./eval embeddings
expect "embeddings: missing checkpoint" 2 "$T/none.ckpt: no such checkpoint" ./eval embeddings --ckpt "$T/none.ckpt"
expect "embeddings: batch zero" 2 "--batch: 0 is out of range" ./eval embeddings --ckpt x --batch 0
expect "embeddings: stray argument" 2 "embeddings: unexpected argument 'x'" ./eval embeddings x
expect "demo: threads zero" 2 "--threads: '0' is not a whole number in 1..1024" ./demo --threads 0
expect "demo: threads garbage" 2 "--threads: '4x' is not a whole number" ./demo --threads 4x
expect "demo: threads huge" 2 "--threads: '100000' is not a whole number" ./demo --threads 100000
expect "demo: out without value" 2 "--out needs a value" ./demo --out
expect "demo: unknown option" 2 "unknown option '--bogus'" ./demo --bogus
expect "demo: out twice" 2 "--out is given twice" ./demo --out "$T/d1" --out "$T/d2"
expect "demo: precision unknown" 2 "--precision: 'fp16' is not one of fp32|bf16" ./demo --precision fp16
expect "demo: seed negative" 2 "--seed: '-1' is not a whole number" ./demo --seed -1
expect "demo: seed garbage" 2 "--seed: '7x' is not a whole number" ./demo --seed 7x
expect "demo: seed twice" 2 "--seed is given twice" ./demo --seed 1 --seed 2
touch "$T/nockpt/x"
expect "demo: out not empty" 1 "$T/nockpt is not empty" ./demo --out "$T/nockpt"

# ================================================================ data_prep.sh
DP=./data_prep.sh
expect "data_prep: unknown subcommand" 1 "unknown subcommand 'frobnicate'" $DP frobnicate
expect "data_prep: builtin unknown option" 1 "builtin: unknown option --imagez" $DP builtin "$T/dp" --imagez 20
expect "data_prep: builtin images zero" 1 "builtin: --images: 0 is out of range" $DP builtin "$T/dp" --images 0
expect "data_prep: builtin images garbage" 1 "builtin: --images: '10x' is not a whole number" $DP builtin "$T/dp" --images 10x
expect "data_prep: builtin missing value" 1 "builtin: --images needs a value" $DP builtin "$T/dp" --images
expect "data_prep: builtin captions zero" 1 "builtin: --captions: 0 is out of range" $DP builtin "$T/dp" --captions 0
expect "data_prep: builtin seed negative" 1 "builtin: --seed: '-1' is not a whole number" $DP builtin "$T/dp" --seed -1
expect "data_prep: builtin option twice" 1 "builtin: --images is given twice" $DP builtin "$T/dp" --images 5 --images 6
expect "data_prep: builtin regions" 1 "--regions must be detector or pixels" $DP builtin "$T/dp" --regions voxels
expect "data_prep: tts jobs zero" 1 "tts: --jobs: 0 is out of range" $DP tts "$T/dp" --jobs 0
expect "data_prep: tts canvas" 1 "tts: --canvas must be 32 or 48" $DP tts "$T/dp" --canvas 40
expect "data_prep: tts images garbage" 1 "tts: --images: '2k' is not a whole number" $DP tts "$T/dp" --images 2k
expect "data_prep: tts fmnist folder" 1 "tts: --fmnist $T/none: no such folder" $DP tts "$T/dp" --fmnist "$T/none"
expect "data_prep: librispeech option" 1 "librispeech: unknown option --foo" $DP librispeech "$T" "$T/dp" --foo 1
expect "data_prep: zerospeech short option" 1 "zerospeech: unknown option -x" $DP zerospeech "$T" "$T/dp" -x
expect "data_prep: spokencoco option" 1 "spokencoco: unknown option --feature" $DP spokencoco "$T" "$T/dp" --feature f.npy
# every missing tool in one message: a PATH with bash and the basics only, Fashion-MNIST absent
mkdir -p "$T/bin" "$T/nofm"
for t in bash awk tr printf cat sed dirname mkdir ls rm mv nproc head; do p=$(command -v $t) && ln -sf "$p" "$T/bin/$t"; done
expect_first "data_prep: all missing tools at once" 1 "tts needs 4 thing(s) that are not installed: 'espeak-ng' (speech synthesis), 'python3' (scene and caption generation), 'cc' (to compile tools/espeak_align.c), Fashion-MNIST" env PATH="$T/bin" $DP tts "$T/dp" --fmnist "$T/nofm"
check 'grep -q "apt-get install espeak-ng python3 gcc dataset-fashion-mnist" "$T/err"' "missing tools: one install line for all: $(cat "$T/err")"
check '[ ! -e "$T/dp" ] && [ ! -e "$T/dp.partial" ]' "a refused data_prep.sh left an output folder"

# ================================================================ resume restores every setting
# A schedule with non-default settings everywhere; stopped after 5 of 10 updates, then
# `./train --resume DIR` alone must give the same bits and the same log as the straight run.
SET="--scenario w2v2,vgs+ --steps 10 --switch 4 --lr 5e-4 --warmup 0.2 --clip 0.5 --wd 0.02 --ckpt-every 3 --eval-every 5
     --set n_negatives=10 --set mask_prob=0.5 --seed 3 --alpha 0.4 --bertadam"
$TQ $SET --out "$T/straight" > /dev/null 2>&1
$TQ $SET --out "$T/resumed" --stop-after 5 > /dev/null 2>&1
./train --quiet --resume "$T/resumed" > "$T/out" 2>&1
check '[ -f "$T/straight/final.ckpt" ] && cmp -s "$T/straight/final.ckpt" "$T/resumed/final.ckpt"' "resume alone is not bit-exact: $(cat "$T/out")"
check 'cmp -s "$T/straight/log.jsonl" "$T/resumed/log.jsonl"' "resumed log differs from the straight run's"
expect "resume with another lr" 2 "--lr 0.001 differs from the run's setting lr = 0.00050000000000000001" ./train --resume "$T/resumed" --lr 1e-3
expect "resume with another batch" 2 "--batch 4 differs from the run's setting batch = 2" ./train --resume "$T/resumed" --batch 4
expect "resume with another --set" 2 "--set changes the run's config: it was started with 'n_negatives = 10'" ./train --resume "$T/resumed" --set n_negatives=20
expect "resume with another config" 2 "--config small differs from the run's setting config = tiny" ./train --resume "$T/resumed" --config small
expect "resume with another data" 2 "--data builtin differs from the run's setting data = $D" ./train --resume "$T/resumed" --data builtin
expect "resume with --out" 2 "--out does not go with --resume" ./train --resume "$T/resumed" --out "$T/x"
expect "resume with --force" 2 "--force does not go with --resume" ./train --resume "$T/resumed" --force
expect "resume a finished run" 1 "is finished (10 of 10 updates): give --steps N above 10" ./train --resume "$T/resumed"
expect "resume with fewer steps" 1 "--steps 8: the run in $T/resumed has already done 10 updates" ./train --resume "$T/resumed" --steps 8
expect "new run into a run folder" 1 "$T/resumed already holds a run (log.jsonl, last.ckpt, final.ckpt, switch.ckpt, data.spec)" $TQ --steps 2 --out "$T/resumed"
./train --quiet --resume "$T/resumed" --steps 12 --threads 2 > "$T/out" 2>&1
check '[ -f "$T/resumed/final.ckpt" ] && [ "$(grep -c "\"kind\":\"train\"" "$T/resumed/log.jsonl")" = 12 ] && grep -q "\"steps\":12" "$T/resumed/log.jsonl"' "--steps extends a finished run: $(cat "$T/out")"
# the same options given again are accepted
$TQ $SET --out "$T/again" --stop-after 2 > /dev/null 2>&1
./train --quiet --resume "$T/again" --lr 0.0005 --batch 2 --set n_negatives=10 --stop-after 6 > "$T/out" 2>&1
check '[ $? = 0 ] && grep -q "\"step\":6," "$T/again/log.jsonl"' "resume with the stored values repeated: $(cat "$T/out")"

# ---- --precision is a run setting: stored, restored by --resume alone (bit-exact), a change refused.
# Without AVX512-BF16 a bf16 request trains (and is stored as) fp32 after a one-line note.
PS="--scenario vgs+ --steps 6 --eval-every 3 --precision bf16"
$TQ $PS --out "$T/pstraight" > "$T/pout" 2>&1
$TQ $PS --out "$T/presumed" --stop-after 3 > /dev/null 2>&1
./train --quiet --resume "$T/presumed" > "$T/out" 2>&1
check '[ -f "$T/pstraight/final.ckpt" ] && cmp -s "$T/pstraight/final.ckpt" "$T/presumed/final.ckpt" && cmp -s "$T/pstraight/log.jsonl" "$T/presumed/log.jsonl"' \
    "--precision bf16: resume alone is not bit-exact: $(cat "$T/out")"
if grep -q "needs AVX512-BF16" "$T/pout"; then
    check '[ "$(grep -c "needs AVX512-BF16" "$T/pout")" = 1 ] && ! grep -q "\"precision\"" "$T/pstraight/log.jsonl"' "bf16 fallback: one note, an fp32 run: $(cat "$T/pout")"
    expect "resume with another precision" 2 "--precision bf16 differs from the run's setting precision = fp32" ./train --resume "$T/presumed" --steps 8 --precision bf16
else
    check 'grep -q "\"precision\":\"bf16\"" "$T/pstraight/log.jsonl" && grep -qa "^precision = bf16$" "$T/pstraight/final.ckpt"' \
        "a bf16 run names its precision in the log and the checkpoint's config"
    expect "resume with another precision" 2 "--precision fp32 differs from the run's setting precision = bf16" ./train --resume "$T/presumed" --steps 8 --precision fp32
fi

# ================================================================ --force, --out parents, data.spec from any folder
echo '{"kind":"final_eval","ckpt":"old"}' > "$T/again/final_eval.json"
$TQ --steps 2 --eval-every 2 --out "$T/again" --force > /dev/null 2>&1
check '[ -f "$T/again/final.ckpt" ] && [ ! -e "$T/again/final_eval.json" ] && [ "$(grep -c "\"kind\":\"train\"" "$T/again/log.jsonl")" = 2 ]' "--force did not clear the old run"
$TQ --steps 1 --eval-every 1 --out "$T/a/b/c" > /dev/null 2>&1
check '[ -f "$T/a/b/c/final.ckpt" ]' "--out a/b/c did not create the parents"
(cd / && "$ROOT/eval" --ckpt "$T/a/b/c/final.ckpt" --retrieval > "$T/out" 2>&1)
check '[ $? = 0 ] && grep -q "S->I" "$T/out"' "eval from another working folder: $(tail -3 "$T/out")"

# ================================================================ a study (--all) stops and resumes as a whole
ST="$TQ --all --schedules w2v2-vgs --steps 6 --switch 2 --eval-every 3"
$ST --out "$T/study" > /dev/null 2>&1
$ST --out "$T/study2" --stop-after 4 > "$T/out" 2>&1
check 'grep -q "resume with: ./train --resume $T/study2$" "$T/out"' "a stopped study names the study to resume: $(cat "$T/out")"
expect "resume one run of a study" 2 "$T/study2/w2v2 is one run of a study (--all): resume the whole study with --resume $T/study2" ./train --resume "$T/study2/w2v2"
expect "new study into a study folder" 1 "$T/study2 already holds a study: resume it with --resume $T/study2, or replace it with --force" $ST --out "$T/study2"
./train --quiet --resume "$T/study2" > "$T/out" 2>&1
same=0
for r in w2v2 vgs vgsplus w2v2-vgs; do cmp -s "$T/study/$r/final.ckpt" "$T/study2/$r/final.ckpt" && same=$((same + 1)); done
check '[ "$same" = 4 ] && [ ! -e "$T/study2/vgs-w2v2" ]' "resumed study: $same of 4 runs bit-exact; $(cat "$T/out")"
# --seeds N: one study per seed in OUT/seed<S>, each the bits of `--all --seed S`; stopped in the
# first seed and resumed as a whole, the second seed starts on resume
expect "seeds without --all" 2 "--seeds goes with --all" $TR --seeds 2
expect "seeds zero" 2 "--seeds: 0 is out of range: 1..1000" $TR --all --seeds 0
expect "seeds overflow the seed" 2 "--seed 18446744073709551615 + --seeds 2 overflows" $TR --all --seeds 2 --seed 18446744073709551615
$ST --seed 2 --out "$T/study_s2" > /dev/null 2>&1
$ST --seeds 2 --out "$T/seeds" --stop-after 4 > /dev/null 2>&1
check '[ -f "$T/seeds/study.settings" ] && grep -q "^seeds = 2$" "$T/seeds/study.settings" && [ ! -e "$T/seeds/seed2/w2v2/log.jsonl" ]' "--seeds: a study stopped in seed 1: $(ls "$T/seeds")"
expect "seeds: new study into a seeds folder" 1 "$T/seeds already holds a study: resume it with --resume $T/seeds" $ST --seeds 2 --out "$T/seeds"
./train --quiet --resume "$T/seeds" > "$T/out" 2>&1
same=0
for r in w2v2 vgs vgsplus w2v2-vgs; do
    cmp -s "$T/study/$r/final.ckpt" "$T/seeds/seed1/$r/final.ckpt" && same=$((same + 1))
    cmp -s "$T/study_s2/$r/final.ckpt" "$T/seeds/seed2/$r/final.ckpt" && same=$((same + 1))
done
check '[ "$same" = 8 ]' "--seeds 2 resumed: $same of 8 runs have the bits of --all --seed S; $(cat "$T/out")"
check 'grep -q "^seed = 2$" "$T/seeds/seed2/study.settings" && grep -q "^seeds = 0$" "$T/seeds/seed2/study.settings"' "--seeds: seed 2's own settings"

# ================================================================ a full disk leaves no empty or half-written files
# (stderr goes through a pipe: a file would be under the same size limit)
(trap '' XFSZ; ulimit -f 0; exec $TQ --steps 2 --out "$T/full0") 2>&1 > /dev/null | cat > "$T/err"
rc=${PIPESTATUS[0]}
check '[ $rc = 1 ] && grep -q "cannot write $T/full0/log.jsonl" "$T/err" && [ "$(wc -l < "$T/err")" = 1 ] && [ -z "$(find "$T/full0" -type f)" ]' \
    "no room for the log: exit $rc, $(cat "$T/err"), files: $(find "$T/full0" -type f)"
(trap '' XFSZ; ulimit -f 16; exec $TQ --steps 2 --out "$T/full1") 2>&1 > /dev/null | cat > "$T/err"
rc=${PIPESTATUS[0]}
check '[ $rc = 1 ] && grep -q "write failed" "$T/err" && [ -z "$(find "$T/full1" -size 0)" ] && [ ! -e "$T/full1/last.ckpt" ] && [ -z "$(find "$T/full1" -name "*.tmp")" ]' \
    "no room for a checkpoint: exit $rc, $(cat "$T/err"), files: $(ls -la "$T/full1")"

# ================================================================ SIGTERM: finish the step, checkpoint, print the resume command
$TQ --scenario vgs+ --steps 400 --ckpt-every 1000 --eval-every 1000 --out "$T/sig" > /dev/null 2> "$T/sigerr" &
pid=$!
for i in $(seq 1 600); do [ "$(cat "$T/sig/log.jsonl" 2>/dev/null | grep -c '"kind":"train"')" -ge 3 ] && break; sleep 0.05; done
kill -TERM $pid; wait $pid; rc=$?
check '[ $rc = 143 ] && grep -q "interrupted by SIGTERM: checkpoint written; resume with: ./train --resume $T/sig" "$T/sigerr" && [ -f "$T/sig/last.ckpt" ]' \
    "SIGTERM: exit $rc, $(cat "$T/sigerr")"
n=$(grep -c '"kind":"train"' "$T/sig/log.jsonl")
./train --quiet --resume "$T/sig" --steps "$((n + 2))" > "$T/out" 2>&1
check '[ "$(grep -c "\"kind\":\"train\"" "$T/sig/log.jsonl")" = "$((n + 2))" ] && [ -f "$T/sig/final.ckpt" ]' "resume after SIGTERM at step $n: $(cat "$T/out")"

# ================================================================ kill -9: the whole log reads back
# Every update is logged (a whole line, flushed) before its checkpoint is written, so after a
# kill the log holds updates 1..M with M >= the checkpoint's step; a torn line is dropped on resume.
$TQ --scenario vgs+ --steps 400 --ckpt-every 1 --eval-every 1000 --out "$T/k9" > /dev/null 2>&1 &
pid=$!
for i in $(seq 1 600); do [ -f "$T/k9/last.ckpt" ] && break; sleep 0.05; done
sleep 0.7
kill -9 $pid; wait $pid 2>/dev/null
printf '{"kind":"train","ste' >> "$T/k9/log.jsonl"     # what a kill during a write leaves
cp "$T/k9/log.jsonl" "$T/k9.log"
steps=$(grep -ao '"kind":"train","step":[0-9]*' "$T/k9.log" | sed 's/.*://' | tr '\n' ' ')
k=$(echo $steps | wc -w)
./train --resume "$T/k9" --steps "$((k + 3))" > "$T/out" 2>&1
at=$(sed -n 's/^resuming vgsplus at step \([0-9]*\) .*/\1/p' "$T/out")
check '[ -n "$at" ] && [ "$k" -ge "$at" ] && [ "$at" -ge 1 ] && [ "$(echo $steps)" = "$(seq -s " " 1 $k)" ]' \
    "after kill -9 the log lost updates: it has $steps, the checkpoint is at update $at; $(head -c 300 "$T/out"); log: $(head -c 300 "$T/k9.log" | od -c | head -5)"
bad_lines=$(grep -vc '^{.*}$' "$T/k9/log.jsonl")
steps=$(grep -ao '"kind":"train","step":[0-9]*' "$T/k9/log.jsonl" | sed 's/.*://' | tr '\n' ' ')
check '[ "$bad_lines" = 0 ] && [ "$(echo $steps)" = "$(seq -s " " 1 $((k + 3)))" ] && grep -q "dropped 1 incomplete line" "$T/out"' \
    "log after kill -9 + resume: $bad_lines torn lines, updates $steps; $(head -c 300 "$T/out")"

# ================================================================ data errors name the file and line
./train --quiet --write-builtin "$T/c" --images 24 --val-images 4 --test-images 6 --captions 2 --seed 5 > /dev/null 2>&1
check '[ -f "$T/c/.complete" ]' "writing the test corpus failed"
mkc() { rm -rf "$T/$1"; cp -r "$T/c" "$T/$1"; }
# a 100-sample WAV (16-bit mono 16 kHz): shorter than the receptive field
wav100() { printf 'RIFF\xe4\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\xc8\x00\x00\x00' > "$1"; head -c 200 /dev/zero >> "$1"; }
mkc short; wav100 "$T/short/wav/tiny.wav"
awk -F'\t' 'BEGIN{OFS="\t"} NR==3 {$2="wav/tiny.wav"} {print}' "$T/c/train.tsv" > "$T/short/train.tsv"
id3=$(awk -F'\t' 'NR==3 {print $1}' "$T/c/train.tsv")
expect "too-short utterance names file and line" 1 "$T/short/train.tsv:3 (utterance '$id3'): 100 samples (0.006 s) of audio, shorter than the" $TQ0 --data "$T/short" --steps 2 --out "$T/r_short"
mkc noimg; awk -F'\t' 'BEGIN{OFS="\t"} NR>1 {$3=-1} {print}' "$T/c/train.tsv" > "$T/noimg/train.tsv"
expect "VGS without images" 1 "$T/noimg/train.tsv: no utterance has an image" $TQ0 --data "$T/noimg" --scenario vgs --steps 2 --out "$T/r_noimg"
mkc leak; timg=$(awk -F'\t' 'NR==2 {print $3}' "$T/c/test.tsv")
awk -F'\t' -v i="$timg" 'BEGIN{OFS="\t"} NR==5 {$3=i} {print}' "$T/c/train.tsv" > "$T/leak/train.tsv"
expect "train row on a test image" 1 "$T/leak/train.tsv:5: utterance '$(awk -F'\t' 'NR==5 {print $1}' "$T/c/train.tsv")' uses image $timg, a test image (test.tsv:2" $TQ0 --data "$T/leak" --steps 2 --out "$T/r_leak"
mkc item; f=$(sed -n 2p "$T/c/test.item" | cut -d' ' -f1); echo "$f 0.5 999.0 AA B C spk" >> "$T/item/test.item"
expect ".item token past its file" 1 "test.item: item" $TQ0 --data "$T/item" --steps 2 --out "$T/r_item"
check 'grep -q "offset 999.0000 s beyond the end of the file" "$T/err"' ".item check message: $(cat "$T/err")"
$TQ0 --data "$T/c" --scenario w2v2 --steps 1 --eval-every 1 --out "$T/r_c" > /dev/null 2>&1
mkc nocap; awk -F'\t' 'BEGIN{OFS="\t"} NR>1 {$3=-1} {print}' "$T/c/test.tsv" > "$T/nocap/test.tsv"
expect_last "eval: zero captions" 2 "split test has no captions with images" ./eval --ckpt "$T/r_c/final.ckpt" --data "$T/nocap" --retrieval
mkc notok; head -1 "$T/c/test.item" > "$T/notok/test.item"; echo "$f 0.00 0.01 AA B C spk" >> "$T/notok/test.item"
expect_last "eval: ABX with no usable token" 1 "ABX on test: 0 of 1 tokens usable" ./eval --ckpt "$T/r_c/final.ckpt" --data "$T/notok" --abx --abx-split test

# ================================================================ no results from stale inputs
./eval --ckpt "$T/r_c/final.ckpt" --abx --abx-split ood --abx-mode exact > /dev/null 2>&1
./eval --ckpt "$T/r_c/final.ckpt" --retrieval > /dev/null 2>&1
J="$T/r_c/final_eval.json"
check 'grep -q "\"r10_s2i\":" "$J" && grep -q "\"abx_ood_within\":" "$J" && grep -q "\"ckpt_id\":" "$J"' "--retrieval dropped the ABX part: $(cat "$J")"
mkdir -p "$T/stale"; cp "$T/r_c/log.jsonl" "$T/r_c/final_eval.json" "$T/stale/"; cp "$T/a/b/c/final.ckpt" "$T/stale/"
expect "report: result of another checkpoint" 2 "$T/stale/final_eval.json was computed from another checkpoint than $T/stale/final.ckpt" ./eval --report "$T/stale" --out "$T/rep"
./eval --report "$T/r_c" --out "$T/rep" > /dev/null 2>&1
check '[ $? = 0 ] && [ -f "$T/rep/results.md" ]' "report of a consistent run failed"
head -c 3000 "$T/r_c/final.ckpt" > "$T/trunc.ckpt"
expect "eval: truncated checkpoint" 2 "checksum mismatch" ./eval --ckpt "$T/trunc.ckpt"

echo "drivers.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]
