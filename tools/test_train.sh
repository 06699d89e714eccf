#!/usr/bin/env bash
# Driver tests for ./train and ./eval (run by make test): exact resume, kill -9 during a run,
# schedules, bad checkpoints, corpus WAV formats, Hugging Face export and --init-from, feature and
# embedding extraction. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/sv_train_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
D=builtin:images=60,val_images=10,test_images=10,ood_utts=20
TR="./train --quiet --data $D --eval-every 4 --eval-batches 1"

# 1. N steps straight == N/2, stop, resume, N/2 more (bit for bit), across a schedule switch
$TR --scenario w2v2,vgs --steps 16 --switch 8 --out "$T/a" --ckpt-every 4 >/dev/null 2>&1
$TR --scenario w2v2,vgs --steps 16 --switch 8 --out "$T/b" --ckpt-every 4 --stop-after 8 >/dev/null 2>&1
./train --quiet --resume "$T/b" >/dev/null 2>&1
check 'cmp -s "$T/a/final.ckpt" "$T/b/final.ckpt"' "resume after 8 of 16 steps is not bit-exact"
check '[ "$(grep -c "\"kind\":\"train\"" "$T/b/log.jsonl")" = 16 ]' "resumed log has 16 train lines"

# 2. kill -9 at a random moment with a checkpoint every step: resume from the last complete one
$TR --scenario vgs+ --steps 30 --out "$T/k" --ckpt-every 1 >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 600); do [ -f "$T/k/last.ckpt" ] && break; sleep 0.05; done   # past the first checkpoint
sleep "$(awk 'BEGIN{srand(); printf "%.2f", 1.5 * rand()}')"
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
ls "$T/k"/*.tmp >/dev/null 2>&1 && echo "  (a temporary checkpoint was left by the kill, as expected sometimes)"
./train --quiet --resume "$T/k" >/dev/null 2>&1
check '[ -f "$T/k/final.ckpt" ]' "the killed run did not finish after --resume"
$TR --scenario vgs+ --steps 30 --out "$T/k2" --ckpt-every 1 >/dev/null 2>&1
check 'cmp -s "$T/k/final.ckpt" "$T/k2/final.ckpt"' "kill -9 + resume differs from the uninterrupted run"

# 3. the switch: the learning rate restarts (first stage-B lr equals the first stage-A lr)
lrA=$(grep '"kind":"train","step":1,' "$T/a/log.jsonl" | sed 's/.*"lr":\([^,]*\).*/\1/')
lrB=$(grep '"kind":"train","step":9,' "$T/a/log.jsonl" | sed 's/.*"lr":\([^,]*\).*/\1/')
check '[ -n "$lrA" ] && [ "$lrA" = "$lrB" ]' "learning rate restarts at the switch ($lrA vs $lrB)"
check 'grep -q "\"kind\":\"switch\",\"step\":8" "$T/a/log.jsonl"' "switch logged at step 8"

# 4. every eval line has both tasks' numbers
n_eval=$(grep -c '"kind":"eval"' "$T/a/log.jsonl")
n_both=$(grep '"kind":"eval"' "$T/a/log.jsonl" | grep '"val_loss_av":[0-9]' | grep -c '"val_loss_aud":[0-9]')
check '[ "$n_eval" -ge 4 ] && [ "$n_eval" = "$n_both" ]' "eval lines with both losses: $n_both of $n_eval"

# 5. --audio-only: speech-only batches join the SSL loss, and resume stays exact with them
./train --quiet --write-builtin "$T/corp" --images 20 --captions 2 --seed 4 >/dev/null 2>&1
./train --quiet --write-builtin "$T/corp2" --images 30 --val-images 4 --test-images 5 --captions 1 --seed 4 >/dev/null 2>&1
check 'grep -q "train 21, val 4, test 5" "$T/corp2/stats.txt"' "--val-images/--test-images: $(sed -n 2p "$T/corp2/stats.txt" 2>&1)"
out=$(./train --quiet --write-builtin "$T/corp3" --images 30 --test-images 27 2>&1)
check 'echo "$out" | grep -q "leave no training images" && [ ! -e "$T/corp3" ]' "--test-images too large: $out"
$TR --scenario vgs+ --steps 8 --out "$T/ao1" --audio-only "$T/corp/ood.tsv" >/dev/null 2>&1
$TR --scenario vgs+ --steps 8 --out "$T/ao2" --audio-only "$T/corp/ood.tsv" --stop-after 3 >/dev/null 2>&1
./train --quiet --resume "$T/ao2" >/dev/null 2>&1   # the manifest comes from the log
check '[ -f "$T/ao1/final.ckpt" ] && cmp -s "$T/ao1/final.ckpt" "$T/ao2/final.ckpt"' "--audio-only run with stop/resume is not bit-exact"
$TR --scenario vgs+ --steps 8 --out "$T/ao4" --audio-only "$T/corp/ood.tsv" --stream >/dev/null 2>&1
check 'cmp -s "$T/ao1/final.ckpt" "$T/ao4/final.ckpt"' "--audio-only manifest streamed from disk (--stream): not the bits of the loaded one"
$TR --scenario vgs+ --steps 8 --out "$T/ao3" >/dev/null 2>&1
check '! cmp -s "$T/ao1/final.ckpt" "$T/ao3/final.ckpt"' "--audio-only changes training"

# validation ABX on too few cells (3 validation utterances): the within condition is left out of
# the log with a note, the across one logged
out=$(./train --data builtin:images=40,val_images=3,test_images=4,ood_utts=8 --scenario w2v2 --steps 4 --eval-every 2 \
      --eval-batches 1 --out "$T/fewv" --threads 1 2>&1)
check 'echo "$out" | grep -q "note: validation ABX within speaker rests on [0-9]* cell(s)" && ! grep -q abx_val_within "$T/fewv/log.jsonl" && grep -q "\"abx_val_across\":[0-9]" "$T/fewv/log.jsonl"' "too few validation ABX cells: $(echo "$out" | grep -i abx | head -2)"

# 6. MT4SSL: offline targets made by --kmeans, then a schedule with --ssl w2v2+mt4ssl stopped and
#    resumed bit for bit across the switch (the checkpoint holds the teacher), and clear errors
K="$T/corp/km8"
./train --quiet --data "$T/corp" --kmeans "$K" --k 8 --kmeans-iter 5 >/dev/null 2>&1
check '[ -f "$K/.complete" ] && [ -f "$K/train.km" ] && [ "$(wc -l < "$K/train.km")" = "$(($(wc -l < "$T/corp/train.tsv") - 1))" ]' "--kmeans made no target folder"
MT="./train --quiet --data $T/corp --eval-every 4 --eval-batches 1 --ssl w2v2+mt4ssl --targets $K"
$MT --scenario w2v2,vgs+ --steps 10 --switch 4 --out "$T/m1" >/dev/null 2>&1
$MT --scenario w2v2,vgs+ --steps 10 --switch 4 --out "$T/m2" --stop-after 6 >/dev/null 2>&1
./train --quiet --resume "$T/m2" >/dev/null 2>&1   # --ssl and --targets come from the checkpoint
check '[ -f "$T/m1/final.ckpt" ] && cmp -s "$T/m1/final.ckpt" "$T/m2/final.ckpt"' "MT4SSL run with stop/resume is not bit-exact"
$MT --scenario w2v2,vgs+ --steps 10 --switch 4 --out "$T/m4" --stream >/dev/null 2>&1
check 'cmp -s "$T/m1/final.ckpt" "$T/m4/final.ckpt" && cmp -s "$T/m1/log.jsonl" "$T/m4/log.jsonl"' "the corpus folder streamed from disk (--stream): not the bits (or not the evaluations) of the loaded one"
check 'grep "\"kind\":\"train\"" "$T/m1/log.jsonl" | grep -q "\"mt4_acc\":[0-9]" && grep "\"kind\":\"eval\"" "$T/m1/log.jsonl" | grep -q "\"val_mt4_on\":[0-9]"' "MT4SSL numbers missing from the log"
out=$(./train --quiet --data "$T/corp" --ssl mt4ssl --steps 2 --out "$T/m3" 2>&1)
check 'echo "$out" | grep -q -- "--kmeans"' "--ssl mt4ssl without targets: $out"
out=$(./train --quiet --data "$T/corp" --ssl hubert --steps 2 --out "$T/m4" 2>&1)
check 'echo "$out" | grep -q "not one of w2v2|mt4ssl|w2v2+mt4ssl"' "bad --ssl: $out"
out=$(./train --quiet --data "$D" --ssl mt4ssl --targets "$K" --steps 2 --out "$T/m5" 2>&1)
check 'echo "$out" | grep -q -E "another corpus|differ"' "targets of another corpus: $out"
out=$(./train --quiet --data "$T/corp" --kmeans "$K" --k 8 2>&1)
check 'echo "$out" | grep -q ".complete"' "--kmeans over a finished folder: $out"

# 7. bad checkpoints give clear errors
head -c 1000 "$T/a/final.ckpt" > "$T/a/trunc.ckpt"
cp "$T/a/final.ckpt" "$T/a/corrupt.ckpt"; printf 'XX' | dd of="$T/a/corrupt.ckpt" bs=1 seek=5000 conv=notrunc 2>/dev/null
mkdir -p "$T/c"; cp "$T/a/log.jsonl" "$T/c/"; cp "$T/a/corrupt.ckpt" "$T/c/last.ckpt"
out=$(./train --quiet --resume "$T/c" 2>&1)
check 'echo "$out" | grep -q "checksum mismatch"' "corrupted checkpoint: $out"
cp "$T/a/trunc.ckpt" "$T/c/last.ckpt"
out=$(./train --quiet --resume "$T/c" 2>&1)
check 'echo "$out" | grep -q -E "checksum mismatch|truncated"' "truncated checkpoint: $out"
out=$(./train --quiet --resume "$T/b" --config small 2>&1)
check 'echo "$out" | grep -q "config small differs from the run.s setting config = tiny"' "resume with another config: $out"
out=$(./train --scenario nope 2>&1)
check 'echo "$out" | grep -q "unknown scenario"' "unknown scenario: $out"
check './train --help | grep -q -- "--resume"' "--help documents the options"

# 7. corpora on disk: 16-bit PCM WAV by default, float32 on request
check '[ "$(od -An -tu2 -j20 -N2 "$T/corp/wav/train_00000.wav" | tr -d " ")" = 1 ] && [ "$(od -An -tu2 -j34 -N2 "$T/corp/wav/train_00000.wav" | tr -d " ")" = 16 ]' "--write-builtin writes 16-bit PCM WAV"
./train --quiet --write-builtin "$T/corpf" --images 6 --captions 1 --wav-format float32 >/dev/null 2>&1
check '[ "$(od -An -tu2 -j20 -N2 "$T/corpf/wav/train_00000.wav" | tr -d " ")" = 3 ]' "--wav-format float32 writes IEEE float WAV"
out=$(./train --write-builtin "$T/corpg" --wav-format mp3 2>&1)
check 'echo "$out" | grep -q "pcm16|float32"' "bad --wav-format: $out"

# 8. Hugging Face weights: --export-hf, then --init-from in a scenario, a schedule and --all
H="$T/hf"
./train --export-hf "$T/a/final.ckpt" "$H/model.safetensors" >/dev/null 2>&1
check '[ -s "$H/model.safetensors" ] && grep -q "\"num_attention_heads\": 4" "$H/config.json"' "--export-hf writes the model and config.json"
# with lr 1e-30 (0 is refused) the run's wav2vec 2.0 part stays the file's, bit for bit: the
# file's weights are trained values, next to which an update of 1e-30 rounds away
$TR --scenario vgs --steps 2 --lr 1e-30 --init-from "$H/model.safetensors" --out "$T/i1" >/dev/null 2>&1
./train --export-hf "$T/i1/final.ckpt" "$T/i1x/model.safetensors" >/dev/null 2>&1
check '[ -s "$T/i1x/model.safetensors" ] && cmp -s "$H/model.safetensors" "$T/i1x/model.safetensors"' "--init-from loads the file's weights bit for bit"
check 'grep -q "\"init_from\":" "$T/i1/log.jsonl"' "the log records --init-from"
$TR --scenario w2v2,vgs --steps 4 --switch 2 --init-from "$H/model.safetensors" --out "$T/i2" >/dev/null 2>&1
$TR --scenario w2v2,vgs --steps 4 --switch 2 --out "$T/i3" >/dev/null 2>&1
check '[ -f "$T/i2/final.ckpt" ] && [ -f "$T/i3/final.ckpt" ] && ! cmp -s "$T/i2/final.ckpt" "$T/i3/final.ckpt"' "--init-from changes a schedule's run"
./train --quiet --data $D --eval-every 100 --eval-batches 1 --all --schedules w2v2-vgs --steps 4 --switch 2 \
    --init-from "$H/model.safetensors" --out "$T/all" >/dev/null 2>&1
check '[ -f "$T/all/w2v2-vgs/final.ckpt" ] && grep -q init_from "$T/all/vgs/log.jsonl" && grep -q init_from "$T/all/w2v2/log.jsonl"' "--all with --init-from"
# another architecture, a truncated file, a missing file: one clear line each
out=$($TR --config small --set img_regions=16 --set img_dim=192 --scenario vgs --steps 1 --init-from "$H/model.safetensors" --out "$T/i4" 2>&1)
check 'echo "$out" | grep -q "does not fit the small config"' "init from another architecture: $out"
head -c 5000 "$H/model.safetensors" > "$T/trunc.safetensors"
out=$($TR --scenario vgs --steps 1 --init-from "$T/trunc.safetensors" --out "$T/i5" 2>&1)
check 'echo "$out" | grep -q "truncated"' "truncated safetensors: $out"
out=$(./train --init-from "$T/none.safetensors" 2>&1)
check 'echo "$out" | grep -q "none.safetensors: No such file"' "missing safetensors: $out"

# 9. ./eval features: a folder (with a subfolder), a list, all layers; frames from the WAV length
mkdir -p "$T/w/sub"
cp "$T/corp/wav/train_00000.wav" "$T/w/a.wav"; cp "$T/corp/wav/train_00001.wav" "$T/w/sub/b.wav"; cp "$T/corp/wav/test_00000.wav" "$T/c.wav"
printf 'c.wav\n' > "$T/list.txt"
./eval features --model "$H/model.safetensors" --out "$T/f1" "$T/w" --list "$T/list.txt" >/dev/null 2>&1
ok_frames=1
for f in w/a w/sub/b c; do
    n=$(( ($(stat -c %s "$T/$f.wav") - 44) / 2 )); frames=$(( (n - 400) / 320 + 1 ))
    name=${f#w/}
    for l in cnn L0 L1 L2 L3; do
        head -c 128 "$T/f1/$l/$name.npy" 2>/dev/null | grep -a -q "'shape': ($frames, 64)" || ok_frames=0
    done
done
check '[ $ok_frames = 1 ]' "features: every layer of every file, T = (samples - 400) / 320 + 1 frames"
./eval features --model "$T/a/final.ckpt" --layers all --out "$T/f2" "$T/w" --list "$T/list.txt" >/dev/null 2>&1
check 'diff -r -q "$T/f1" "$T/f2" >/dev/null' "features from the checkpoint and from its safetensors export are identical"
./eval features --model "$H/model.safetensors" --layers 2 --format zerospeech --out "$T/zs" "$T/c.wav" >/dev/null 2>&1
n=$(( ($(stat -c %s "$T/c.wav") - 44) / 2 )); frames=$(( (n - 400) / 320 + 1 ))
check '[ -f "$T/zs/meta.yaml" ] && [ "$(wc -l < "$T/zs/phonetic/dev-clean/c.txt")" = $frames ] && [ "$(head -1 "$T/zs/phonetic/dev-clean/c.txt" | wc -w)" = 64 ]' "features in the ZeroSpeech 2021 layout"
out=$(./eval features --model "$H/model.safetensors" --layers 1,9 "$T/c.wav" 2>&1)
check 'echo "$out" | grep -q "a layer 0..3"' "bad --layers: $out"
out=$(./eval features --model "$H/model.safetensors" "$T/nothere.wav" 2>&1)
check 'echo "$out" | grep -q "nothere.wav"' "missing input: $out"
out=$(./eval features --model "$H/model.safetensors" "$T/c.wav" "$T/corp/wav/../../c.wav" 2>&1)
check 'echo "$out" | grep -q "both be written"' "two inputs with one name: $out"

# 10. ./eval embeddings: audio and image embeddings of the test split
./eval embeddings --ckpt "$T/a/final.ckpt" --out "$T/emb" >/dev/null 2>&1
nc=$(( $(wc -l < "$T/emb/captions.tsv") - 1 )); ni=$(( $(wc -l < "$T/emb/images.tsv") - 1 ))
check '[ $nc -gt 0 ] && head -c 128 "$T/emb/audio.npy" | grep -a -q "($nc, 64)" && head -c 128 "$T/emb/images.npy" | grep -a -q "($ni, 64)"' "embeddings: $nc captions, $ni images"

# 11. --precision bf16 changes the numbers (settings and resume: tools/test_drivers.sh); without
#     AVX512-BF16 it trains in fp32, the same bits as an fp32 run
p1=$($TR --scenario vgs+ --steps 6 --out "$T/p1" --precision bf16 2>&1)
$TR --scenario vgs+ --steps 6 --out "$T/p3" >/dev/null 2>&1
if echo "$p1" | grep -q "needs AVX512-BF16"; then
    check 'cmp -s "$T/p1/final.ckpt" "$T/p3/final.ckpt"' "without AVX512-BF16, --precision bf16 should train in fp32"
else
    check '[ -f "$T/p1/final.ckpt" ] && ! cmp -s "$T/p1/final.ckpt" "$T/p3/final.ckpt"' "--precision bf16 changes nothing"
fi

echo "train.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]
