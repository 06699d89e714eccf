#!/usr/bin/env bash
# Driver tests for ./eval's files (run by make test): final_eval.json, the ZeroSpeech 2021
# submission layout, and the study's report (results.md tables, forgetting rows, figures).
# Prints "report.sh: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/sv_report_test.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
has() { grep -qF -- "$2" "$1"; }

# 1. the report over two hand-written run folders: schedule (W2V2, VGS) with only a log, and VGS
#    with a log and a final_eval.json. The schedule is given first; the paper's order puts VGS first.
A="$T/runs/w2v2-vgs"; B="$T/runs/vgs"
mkdir -p "$A" "$B"
{
  echo '{"kind":"meta","run":"w2v2-vgs","stage_a":"w2v2","stage_b":"vgs","alpha_a":0,"alpha_b":1,"steps":100,"switch":40,"config":"tiny","data":"builtin","seed":1}'
  # stage A's val loss_AUD 4.0 -> 2.0, then forgotten to 3.5
  for s in 0 20 40 60 80 100; do
    awk -v s=$s 'BEGIN {
      aud = s <= 40 ? 4.0 - s / 20.0 : (s == 60 ? 2.5 : (s == 80 ? 3.0 : 3.5));
      r10 = s <= 40 ? 1.0 : 10.0 + s / 2; st = s > 40 ? 1 : 0;
      printf "{\"kind\":\"train\",\"step\":%d,\"stage\":%d,\"loss\":1.0,\"loss_av\":null,\"loss_aud\":%g}\n", s, st, aud;
      printf "{\"kind\":\"eval\",\"step\":%d,\"stage\":%d,\"val_loss_av\":%g,\"val_loss_aud\":%g,\"val_acc\":%g,", s, st, 8.0 - s / 20.0, aud, 0.1 + s / 1000.0;
      printf "\"r1_s2i\":%g,\"r5_s2i\":%g,\"r10_s2i\":%g,\"r1_i2s\":%g,\"r5_i2s\":%g,\"r10_i2s\":%g,", r10 / 4, r10 / 2, r10, r10 / 3, r10 / 1.5, r10 + 2;
      printf "\"abx_within\":%g,\"abx_across\":%g,\"abx_layer\":2,\"val_images\":50,\"val_captions\":50,", 30.0 - s / 10.0, 35.0 - s / 10.0;
      printf "\"abx_val_within\":%g,\"abx_val_across\":%g}\n", 20.0 + s / 10.0, 25.0 + s / 10.0;
      if (s == 40) print "{\"kind\":\"switch\",\"step\":40}" }'
  done
  echo '{"kind":"final","step":100}'
} > "$A/log.jsonl"
printf '%s\n' '{"kind":"meta","run":"vgs","stage_a":"vgs","alpha_a":1,"steps":100,"switch":0}' \
  '{"kind":"eval","step":50,"stage":0,"val_loss_av":5,"val_loss_aud":null,"r10_s2i":20,"r10_i2s":30}' \
  '{"kind":"eval","step":100,"stage":0,"val_loss_av":3,"val_loss_aud":null,"r10_s2i":40,"r10_i2s":50}' > "$B/log.jsonl"
printf '%s\n' '{"kind":"final_eval","ckpt":"x/final.ckpt","data":"builtin","split":"test","n_images":100,"n_captions":200,"r1_s2i":12.5,"r5_s2i":33.25,"r10_s2i":47,"r1_i2s":15,"r5_i2s":40,"r10_i2s":61,"abx_ood_mode":"exact","abx_ood_layers":"cnn,L0,L1","abx_ood_within_cnn":20,"abx_ood_across_cnn":25,"abx_ood_within_L0":12.25,"abx_ood_across_L0":19,"abx_ood_within_L1":14,"abx_ood_across_L1":17.5,"abx_ood_within":12.25,"abx_ood_within_layer":"L0","abx_ood_across":17.5,"abx_ood_across_layer":"L1","abx_ood_mfcc_within":21.5,"abx_ood_mfcc_across":26}' > "$B/final_eval.json"
out=$(./eval --report "$A" "$B" --out "$T/rep" 2>&1)
check '[ $? = 0 ] && [ -f "$T/rep/results.md" ]' "report failed: $out"
R="$T/rep/results.md"
l1=$(grep -nF '| VGS | 12.5 | 33.2 | 47.0 | 15.0 | 40.0 | 61.0 |' "$R" | cut -d: -f1)
l2=$(grep -nF '| (W2V2, VGS) * | 15.0 | 30.0 | 60.0 | 20.0 | 40.0 | 62.0 |' "$R" | cut -d: -f1)
check '[ -n "$l1" ] && [ -n "$l2" ] && [ "$l1" -lt "$l2" ]' "Table I rows or order wrong"
check 'has "$R" "| VGS | 12.25 (L0) | 17.50 (L1) | final ood |"' "Table II VGS row"
check 'has "$R" "| (W2V2, VGS) | 20.00 | 25.00 | log test |"' "Table II schedule row"
check 'has "$R" "| MFCC (reference, no training) | 21.50 | 26.00 | final ood |"' "Table II MFCC reference row"
check 'has "$R" "100 images, 200 captions" && has "$R" "S->I R@1/5/10 = 1.00 / 5.00 / 10.00 %"' "chance line"
# forgetting of SSL in (W2V2, VGS): 2.0 at the switch, 2.5..3.5 in B, 3.5 at the end
check 'has "$R" "| (W2V2, VGS) | val loss_AUD | 2.0 | 2.5 | 3.5 | 3.5 | 1.5 |"' "forgetting loss row"
check 'has "$R" "| (W2V2, VGS) | val accuracy (%) | 14.0 | 16.0 | 20.0 | 20.0 | 6.0 |"' "forgetting accuracy row"
check '! has "$R" "| (W2V2, VGS) | mean R@10"' "a recall row for a W2V2-first schedule"
check 'echo "$out" | grep -q "val loss_AUD"' "the forgetting summary is printed"
for fig in loss_av loss_aud recall abx_best abx_layers abx_layers_across; do
  F="$T/rep/$fig.svg"
  check './test_sv --xml-check "$F"' "$fig.svg is not well-formed XML"
  check '[ "$(grep -o "<path " "$F" | wc -l)" = 2 ] && has "$F" "data-name=\"VGS\"" && has "$F" "data-name=\"(W2V2, VGS)\""' "$fig.svg: one series per run"
  case $fig in loss_av|loss_aud|recall|abx_best) check 'has "$F" ">switch<"' "$fig.svg: switch marker";; esac
done
# figures a paper would print: chance lines, "log scale" on loss axes, layer names, schedules from
# their switch on (4 of the 6 evaluations of (W2V2, VGS)), the validation ABX curve filled
F="$T/rep/recall.svg"
check 'has "$F" ">chance<"' "recall.svg: no chance line"
check 'has "$T/rep/loss_av.svg" "log scale" && has "$T/rep/loss_aud.svg" "log scale"' "loss figures do not say log scale"
check 'has "$T/rep/abx_layers.svg" ">CNN<" && has "$T/rep/abx_layers.svg" ">L0<" && has "$T/rep/abx_layers.svg" ">L1<" && ! has "$T/rep/abx_layers.svg" ">-1<"' "abx_layers.svg: layer ticks not CNN, L0, L1"
check 'has "$T/rep/abx_layers.svg" "chance (50 %)"' "abx_layers.svg: no chance line"
pts=$(grep -o 'data-name="(W2V2, VGS)"[^>]* d="[^"]*"' "$F" | grep -o ' L' | wc -l)
check '[ "$pts" = 3 ]' "recall.svg: (W2V2, VGS) should be drawn from its switch (4 points, 3 segments), got $pts segments"
check 'grep -q "data-name=\"(W2V2, VGS)\"[^>]* d=\"M" "$T/rep/abx_best.svg"' "abx_best.svg: the validation ABX curve is empty"

# the report over seeds: three hand-written studies (seed1..3) of three runs with known numbers.
# VGS R@10 S->I = 10, 12, 14 (mean 12, t-interval half 4.303 * 2 / sqrt 3 = 4.97), items +-2;
# (W2V2, VGS) = VGS + 5 +- 1 (finding 1 holds); (VGS, W2V2) at chance (1 %)
SS="$T/seeds"
mkdir -p "$SS"; echo "seeds = 3" > "$SS/study.settings"
for k in 1 2 3; do
  for r in vgs w2v2-vgs vgs-w2v2; do
    mkdir -p "$SS/seed$k/$r"; echo "seed = $k" > "$SS/seed$k/study.settings"
    case $r in vgs) v=$((8 + 2 * k)); a=vgs; b="";; w2v2-vgs) v=$((13 + 2 * k + (k == 2 ? 1 : 0))); a=w2v2; b=vgs;; vgs-w2v2) v=1; a=vgs; b=w2v2;; esac
    printf '{"kind":"meta","run":"%s","stage_a":"%s","stage_b":"%s","steps":100,"switch":%s}
' $r $a "$b" $([ -n "$b" ] && echo 50 || echo 0) > "$SS/seed$k/$r/log.jsonl"
    for s in 25 50 75 100; do
      printf '{"kind":"eval","step":%d,"stage":%d,"val_loss_av":%d,"r10_s2i":%d,"r10_i2s":%d,"val_images":100,"val_captions":100,"abx_val_within":%d}
'         $s $([ -n "$b" ] && [ $s -gt 50 ] && echo 1 || echo 0) $((10 - s / 25)) $((s / 10 + k)) $((s / 10)) $((30 - s / 10)) >> "$SS/seed$k/$r/log.jsonl"
    done
    printf '{"kind":"final_eval","n_images":1000,"n_captions":1000,"r1_s2i":1,"r5_s2i":3,"r10_s2i":%d,"r10_s2i_lo":%d,"r10_s2i_hi":%d,"r1_i2s":1,"r5_i2s":3,"r10_i2s":%d,"abx_test_within":%d,"abx_test_within_lo":%d,"abx_test_within_hi":%d,"abx_ood_within":%d,"abx_ood_layers":"cnn,L0","abx_ood_within_cnn":%d,"abx_ood_within_L0":%d}
'       $v $((v - 2)) $((v + 2)) $v $((20 + k)) $((19 + k)) $((21 + k)) $((25 + k)) $((25 + k)) $((30 + k)) > "$SS/seed$k/$r/final_eval.json"
  done
done
out=$(./eval --report "$SS" 2>&1)
R="$SS/results.md"
check '[ -f "$R" ] && has "$R" "# Results over 3 seeds"' "seed report not written: $out"
check 'has "$R" "| VGS | 1.0 ± 0.0 (± 0.0) | 3.0 ± 0.0 (± 0.0) | 12.0 ± 4.97 (± 2.0)" || has "$R" "| VGS | 1.0 ± 0.0 | 3.0 ± 0.0 | 12.0 ± 5.0 (± 2.0) |"' "seed report: VGS row: $(grep -F "| VGS |" "$R" | head -1)"
check 'grep -qF "| VGS | 22.00 ± 2.48 (± 1.00) |" "$R"' "seed report: ABX test within of VGS with its bootstrap half-width: $(grep -F "| VGS |" "$R" | tail -1)"
check 'grep -q "^1\. (W2V2, VGS) retrieves better than VGS.*\*\*holds\*\*: +5.33 points R@10, 95 % interval \[+3.90, +6.77\], 3 of 3 seeds" "$R"' "finding 1: $(grep "^1\." "$R")"
check 'grep -q "^2\. (VGS, W2V2) falls to chance.*\*\*holds\*\*" "$R"' "finding 2: $(grep "^2\." "$R")"
check 'has "$R" "| (VGS, W2V2) | mean R@10 (%), val |"' "forgetting row of (VGS, W2V2): $(grep -F "(VGS, W2V2) |" "$R")"
check 'has "$SS/recall.svg" "fill-opacity" && has "$SS/recall.svg" ">chance<" && ./test_sv --xml-check "$SS/recall.svg"' "seed figures: no band or chance line"
check 'has "$SS/abx_layers.svg" ">CNN<" && grep -q "data-name=\"VGS\"[^>]* d=\"M" "$SS/abx_layers.svg"' "seed abx_layers.svg: mean per-layer ABX missing"
# logs with the across-speaker validation ABX only (train leaves out a within condition scored
# on too few cells): the figure and the forgetting rows use it, and say so
SA="$T/study_across"; cp -r "$SS" "$SA"; rm -f "$SA/results.md" "$SA"/*.svg
for f in "$SA"/seed*/*/log.jsonl; do sed -i 's/"abx_val_within"/"abx_val_across"/' "$f"; done
./eval --report "$SA" >/dev/null 2>&1
check 'grep -q "across speakers (validation items)" "$SA/abx_best.svg" && grep -q "best-layer ABX across (%), val items" "$SA/results.md" && ! grep -q "best-layer ABX within (%)" "$SA/results.md"' "across-only validation ABX: $(grep -o "Best-layer ABX[^<]*" "$SA/abx_best.svg" 2>&1 | head -1)"
out=$(./eval --report "$SS" "$A" 2>&1)
check '[ $? = 2 ] && echo "$out" | grep -q "not a study folder"' "a study mixed with a run folder accepted: $out"

# an MT4SSL run: named after its objective, its two targets' losses in their own figures, and
# its offline accuracy in the forgetting rows (no contrastive accuracy there)
M="$T/runs/mt"; mkdir -p "$M"
printf '%s\n' '{"kind":"meta","run":"w2v2-vgs","stage_a":"w2v2","stage_b":"vgs","alpha_a":0,"alpha_b":1,"ssl":"mt4ssl","steps":20,"switch":10}' \
  '{"kind":"eval","step":10,"stage":0,"val_loss_av":6,"val_loss_aud":7,"val_acc":null,"val_mt4_off":4.5,"val_mt4_acc":0.25,"val_mt4_on":2.5}' \
  '{"kind":"switch","step":10}' \
  '{"kind":"eval","step":20,"stage":1,"val_loss_av":5,"val_loss_aud":8,"val_acc":null,"val_mt4_off":5.0,"val_mt4_acc":0.2,"val_mt4_on":3.0}' > "$M/log.jsonl"
out=$(./eval --report "$M" "$B" --out "$T/rep4" 2>&1)
check 'has "$T/rep4/results.md" "| (MT4SSL, VGS) |" && has "$T/rep4/results.md" "| (MT4SSL, VGS) | val accuracy (%) | 25.0 |"' "MT4SSL run in the report: $(grep -F "MT4SSL" "$T/rep4/results.md" 2>&1 | head -3)"
for fig in mt4ssl_offline mt4ssl_online; do
  check './test_sv --xml-check "$T/rep4/$fig.svg" && has "$T/rep4/$fig.svg" "data-name=\"(MT4SSL, VGS)\""' "$fig.svg missing or without the MT4SSL run"
done
check '[ ! -f "$T/rep/mt4ssl_offline.svg" ]' "an MT4SSL figure for runs without MT4SSL"
# a torn last line is named, the rest still read
cp -r "$A" "$T/runs/torn"; printf '{"kind":"eval","step":120,"val_lo' >> "$T/runs/torn/log.jsonl"
out=$(./eval --report "$T/runs/torn" --out "$T/rep2" 2>&1)
check 'echo "$out" | grep -q "torn/log.jsonl:.*not a whole log record"' "torn line not named: $out"
out=$(./eval --report "$A" /nonexistent/run --out "$T/rep3" 2>&1)
check 'echo "$out" | grep -q "/nonexistent/run"' "missing run folder not named: $out"

# 2. final_eval.json and the ZeroSpeech export of a tiny trained model
D=builtin:images=40,val_images=6,test_images=10,ood_utts=24
./train --quiet --data $D --scenario vgs+ --steps 2 --eval-every 2 --eval-batches 1 --out "$T/run" >/dev/null 2>&1
check '[ -f "$T/run/final.ckpt" ]' "tiny training run failed"
./eval --ckpt "$T/run/final.ckpt" --retrieval --abx --abx-split ood --abx-mode exact >/dev/null 2>"$T/err"
J="$T/run/final_eval.json"
check '[ -f "$J" ] && has "$J" "\"kind\":\"final_eval\"" && has "$J" "\"r10_s2i\":" && has "$J" "\"abx_ood_mode\":\"exact\"" && has "$J" "\"abx_ood_layers\":\"cnn,L0,L1,L2,L3\"" && grep -qE "\"abx_ood_across_L2\":[0-9]" "$J" && grep -qE "\"abx_ood_mfcc_within\":[0-9]" "$J"' "final_eval.json: $(cat "$J" 2>&1) $(cat "$T/err")"
./eval --ckpt "$T/run/final.ckpt" --export-zs "$T/zs" --layer 2 >/dev/null 2>"$T/err"
M="$T/zs/meta.yaml"
check 'has "$M" "open_source: true" && has "$M" "gpu_budget: 0.0" && has "$M" "    frame_shift: 0.02" && has "$M" "    pooling: mean"' "meta.yaml: $(cat "$M" 2>&1) $(cat "$T/err")"
n=$(ls "$T/zs/phonetic/dev-clean" 2>/dev/null | wc -l)
check '[ "$n" = 24 ]' "ZeroSpeech export: $n of 24 feature files"
f=$(ls "$T/zs/phonetic/dev-clean"/*.txt 2>/dev/null | head -1)
check '[ -n "$f" ] && [ "$(head -1 "$f" | wc -w)" = 64 ] && [ "$(wc -l < "$f")" -gt 10 ]' "feature file shape: $(head -c 200 "$f" 2>&1)"
out=$(./eval --ckpt "$T/run/final.ckpt" --export-zs "$T/zs2" --layer 99 2>&1)
check '[ $? != 0 ] && echo "$out" | grep -q "layer"' "bad --layer accepted: $out"

# 3. the recall bootstrap: an interval around every recall, the same for the same --seed
check 'python3 -c "
import json,sys; j=json.load(open(sys.argv[1]))
assert j[\"recall_boot\"] == 1000
for k in (\"r1_s2i\",\"r5_s2i\",\"r10_s2i\",\"r1_i2s\",\"r5_i2s\",\"r10_i2s\"): assert j[k+\"_lo\"] <= j[k] <= j[k+\"_hi\"], k
assert any(j[k+\"_hi\"] > j[k+\"_lo\"] for k in (\"r1_s2i\",\"r5_s2i\",\"r1_i2s\",\"r5_i2s\"))
" "$J" 2>"$T/err"' "bootstrap intervals in final_eval.json: $(cat "$T/err")"
# the ABX interval of the best layer, over phonetic contexts, around its score
abx_in() { sed -n "s/.*\"abx_ood_within$1\":\([0-9.e+-]*\).*/\1/p" "$J"; }
check 'awk -v lo="$(abx_in _lo)" -v v="$(abx_in "")" -v hi="$(abx_in _hi)" "BEGIN { exit !(lo != \"\" && hi != \"\" && lo + 0 <= v + 0 && v + 0 <= hi + 0 && hi > lo) }"' "ABX bootstrap interval: $(abx_in _lo) $(abx_in "") $(abx_in _hi)"
./eval --ckpt "$T/run/final.ckpt" --retrieval --bootstrap 200 --seed 5 --json "$T/b1.json" >/dev/null 2>&1
./eval --ckpt "$T/run/final.ckpt" --retrieval --bootstrap 200 --seed 5 --json "$T/b2.json" >/dev/null 2>&1
check 'grep -q "\"recall_boot\":200" "$T/b1.json" && [ "$(sed "s/\"ckpt[^,]*,//g" "$T/b1.json")" = "$(sed "s/\"ckpt[^,]*,//g" "$T/b2.json")" ]' "bootstrap not reproducible with --seed"

# 4. an external ZeroSpeech-style set: a manifest with its .item beside it, and an .item with the
#    wav files beside it; results in RUN/eval_<name>.json, final_eval.json untouched
./train --write-builtin "$T/corp" --images 20 --captions 1 --seed 3 >/dev/null 2>&1
mkdir -p "$T/zsset"; cp "$T/corp/ood.item" "$T/zsset/dev-x.item"
for f in "$T/corp/wav"/ood_*.wav; do ln -s "$f" "$T/zsset/$(basename "$f")"; done
cp "$J" "$T/final_before.json"
./eval --ckpt "$T/run/final.ckpt" --abx-set "$T/corp/ood.tsv" --set-name corp-ood --abx-mode exact >/dev/null 2>"$T/err"
E1="$T/run/eval_corp-ood.json"
check '[ -f "$E1" ] && has "$E1" "\"kind\":\"abx_set\"" && has "$E1" "\"set\":\"corp-ood\"" && has "$E1" "\"abx_layers\":\"cnn,L0,L1,L2,L3\"" && grep -qE "\"abx_within_cnn\":[0-9]" "$E1"' "eval_corp-ood.json: $(cat "$E1" 2>&1) $(cat "$T/err")"
check 'cmp -s "$J" "$T/final_before.json"' "an external set changed final_eval.json"
./eval --ckpt "$T/run/final.ckpt" --abx-set "$T/zsset/dev-x.item" --abx-mode exact >/dev/null 2>"$T/err"
E2="$T/run/eval_dev-x.json"
w1=$(grep -o '"abx_within_L2":[^,]*' "$E1"); w2=$(grep -o '"abx_within_L2":[^,]*' "$E2" 2>/dev/null)
check '[ -f "$E2" ] && [ -n "$w1" ] && [ "$w1" = "$w2" ]' "the .item + wav folder form: $w2 vs the manifest form: $w1; $(cat "$T/err")"
out=$(./eval --ckpt "$T/run/final.ckpt" --abx-set "$T/zsset/dev-x.item" --json "$T/run/final_eval.json" 2>&1)
check '[ $? = 2 ] && echo "$out" | grep -q "never go into a final_eval.json" && cmp -s "$J" "$T/final_before.json"' "--json final_eval.json accepted for an external set: $out"
rm "$T/zsset/$(basename "$(ls "$T/corp/wav"/ood_*.wav | head -1)")"
out=$(./eval --ckpt "$T/run/final.ckpt" --abx-set "$T/zsset/dev-x.item" 2>&1)
check '[ $? != 0 ] && echo "$out" | grep -q "ood_0.*wav: cannot open"' "a missing wav of an .item set is not named: $out"
# the CNN output exported as a layer, on the external set, values that are float32 exactly
./eval --ckpt "$T/run/final.ckpt" --abx-set "$T/corp/ood.tsv" --set-name corp-ood --export-zs "$T/zs3" --layer cnn >/dev/null 2>"$T/err"
f=$(ls "$T/zs3/phonetic/corp-ood"/*.txt 2>/dev/null | head -1)
check '[ -n "$f" ] && [ "$(head -1 "$f" | wc -w)" = 64 ] && has "$T/zs3/meta.yaml" "CNN feature encoder output"' "CNN export: $(ls "$T/zs3/phonetic" 2>&1) $(cat "$T/err")"
check 'python3 -c "
import struct,sys
n=0
for line in open(sys.argv[1]):
    for t in line.split():
        v=struct.unpack(\"f\",struct.pack(\"f\",float(t)))[0]
        assert \"%.9g\" % v == t, (t, v)   # t is the shortest exact text of a float32
        n+=1
assert n > 100
" "$f" 2>"$T/err"' "exported values are not float32 exactly: $(head -c 300 "$T/err")"

# eval features: the ZeroSpeech text of the CNN output and of a layer reads back as the .npy's float32 bits
W="$(ls "$T/corp/wav"/ood_*.wav | tail -1)"
./eval features --model "$T/run/final.ckpt" --layers cnn,2 --format npy --out "$T/fn" "$W" >/dev/null 2>"$T/err"
./eval features --model "$T/run/final.ckpt" --layers cnn,2 --format zerospeech --out "$T/fz" "$W" >/dev/null 2>>"$T/err"
b=$(basename "$W" .wav)
check 'python3 -c "
import struct,sys
def npy(p):
    b=open(p,\"rb\").read(); assert b[:6]==b\"\\x93NUMPY\"
    h=struct.unpack(\"<H\",b[8:10])[0]; d=b[10+h:]
    return struct.unpack(\"<%df\" % (len(d)//4), d)
for lay in (\"cnn\",\"L2\"):
    a=npy(sys.argv[1]+\"/\"+lay+\"/\"+sys.argv[3]+\".npy\")
    t=[struct.unpack(\"f\",struct.pack(\"f\",float(x)))[0] for x in open(sys.argv[2]+\"/\"+lay+\"/phonetic/dev-clean/\"+sys.argv[3]+\".txt\").read().split()]
    assert len(a)==len(t) and len(a)>100, (lay,len(a),len(t))
    assert all(x==y for x,y in zip(a,t)), lay
" "$T/fn" "$T/fz" "$b" 2>"$T/perr"' "eval features: the text does not read back as the npy float32: $(cat "$T/perr" "$T/err" 2>/dev/null | tail -3)"

echo "report.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]
