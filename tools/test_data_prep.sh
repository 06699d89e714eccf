#!/usr/bin/env bash
# tools/test_data_prep.sh - tests of data_prep.sh on tiny fixtures it creates itself in the exact
# upstream layouts (no committed binaries). Run by `make test-data`. Closing line "N passed, N failed".
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DP="$HERE/data_prep.sh"
W="$(mktemp -d "${TMPDIR:-/tmp}/sv data prep test.XXXXXX")"   # a space in every path on purpose
trap 'rm -rf "$W"' EXIT
PASS=0; FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
skip() { echo "skip $*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# run_dp LOG ARGS...: runs data_prep.sh, stdout+stderr to LOG, returns its status
run_dp() { local log="$1"; shift; "$DP" "$@" > "$log" 2>&1; }
# expect_fail NAME PATTERN ARGS...: data_prep.sh must fail and print PATTERN
expect_fail() {
    local name="$1" pat="$2"; shift 2
    if run_dp "$W/log" "$@"; then bad "$name (succeeded)"; return; fi
    if grep -q -- "$pat" "$W/log"; then ok "$name"; else bad "$name (no '$pat' in: $(head -c 300 "$W/log"))"; fi
}
rate_of() { python3 -c 'import sys,wave; w=wave.open(sys.argv[1]); print(w.getframerate(), w.getnchannels())' "$1"; }
# a manifest's column names and row count
header_is() { [ "$(head -n1 "$1")" = "$2" ]; }
rows_are() { [ "$(($(wc -l < "$1") - 1))" -eq "$2" ]; }

have python3 || { echo "python3 is needed for the fixtures"; echo "0 passed, 1 failed"; exit 1; }

# mkwav PATH RATE SECONDS [CHANNELS]: a short tone + noise WAV (16-bit)
mkwav() {
    mkdir -p "$(dirname "$1")"
    python3 - "$1" "$2" "$3" "${4:-1}" <<'PY'
import sys, wave, math, random, struct
p, rate, sec, ch = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
r = random.Random(p)
w = wave.open(p, 'wb'); w.setnchannels(ch); w.setsampwidth(2); w.setframerate(rate)
fr = bytearray()
for i in range(int(rate * sec)):
    v = int(8000 * math.sin(2 * math.pi * 220 * i / rate) + r.randint(-500, 500))
    fr += struct.pack('<h', v) * ch
w.writeframes(bytes(fr)); w.close()
PY
}

echo "== data_prep.sh tests in $W"

# ---------------------------------------------------------------- generic
check "--help lists the subcommands" bash -c "'$DP' --help | grep -q 'builtin OUT' && '$DP' --help | grep -q 'librispeech ROOT OUT' && '$DP' --help | grep -q 'zerospeech ROOT OUT' && '$DP' --help | grep -q 'spokencoco ROOT OUT' && '$DP' --help | grep -q 'tts OUT'"
expect_fail "unknown subcommand" "unknown subcommand" frobnicate
expect_fail "no arguments" "usage" librispeech

# a PATH without sox/soxi (and without espeak-ng), to test the missing-tool paths
NOSOX="$W/nosox_bin"; mkdir -p "$NOSOX"
for d in /usr/local/bin /usr/bin /bin; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
        b=$(basename "$f")
        case "$b" in sox|soxi|play|rec|espeak-ng|espeak) continue ;; esac
        [ -e "$NOSOX/$b" ] || ln -s "$f" "$NOSOX/$b" 2>/dev/null
    done
done
PY3DIR=$(dirname "$(command -v python3)")
NOSOX_PATH="$NOSOX:$PY3DIR"

# ---------------------------------------------------------------- librispeech
if have flac; then
    LS="$W/Libri Speech/dev-clean"
    mkwav "$W/src/a.wav" 16000 0.3; mkwav "$W/src/b.wav" 16000 0.4; mkwav "$W/src/c.wav" 44100 0.3
    mkdir -p "$LS/19/198" "$LS/84/121"
    flac -s -f -o "$LS/19/198/19-198-0000.flac" "$W/src/a.wav"
    flac -s -f -o "$LS/19/198/19-198-0001.flac" "$W/src/b.wav"
    flac -s -f -o "$LS/84/121/84-121-0000.flac" "$W/src/c.wav"
    printf '19-198-0000 HELLO WORLD\n19-198-0001 A SECOND LINE\n' > "$LS/19/198/19-198.trans.txt"
    printf '84-121-0000 FORTY FOUR KILO HERTZ\n' > "$LS/84/121/84-121.trans.txt"
    if run_dp "$W/log" librispeech "$W/Libri Speech" "$W/out ls"; then
        M="$W/out ls/train.tsv"
        check "librispeech: manifest header" header_is "$M" $'id\twav\tspeaker\ttext'
        check "librispeech: 3 utterances" rows_are "$M" 3
        check "librispeech: text lower-cased, speaker from id" grep -q $'^19-198-0001\twav/19-198-0001.wav\t19\ta second line$' "$M"
        check "librispeech: .complete" test -f "$W/out ls/.complete"
        if have sox; then
            check "librispeech: 44.1 kHz FLAC converted to 16 kHz" [ "$(rate_of "$W/out ls/wav/84-121-0000.wav")" = "16000 1" ]
        fi
        check "librispeech: 16 kHz FLAC decoded" [ "$(rate_of "$W/out ls/wav/19-198-0000.wav")" = "16000 1" ]
        expect_fail "librispeech: finished OUT is not overwritten" "already a finished corpus" librispeech "$W/Libri Speech" "$W/out ls"
    else
        bad "librispeech import: $(tail -n3 "$W/log")"
    fi
    # the 44.1 kHz file without sox: a clear error naming the file and the rate
    if PATH="$NOSOX_PATH" "$DP" librispeech "$W/Libri Speech" "$W/out ls nosox" > "$W/log" 2>&1; then
        bad "librispeech without sox (succeeded)"
    else
        check "librispeech without sox: error names file and rate" grep -q "84-121-0000.*44100 Hz.*apt-get install sox" "$W/log"
    fi
    expect_fail "librispeech: missing ROOT" "no such folder" librispeech "$W/nope" "$W/out x"
    mkdir -p "$W/empty root"
    expect_fail "librispeech: wrong layout" "not a LibriSpeech tree" librispeech "$W/empty root" "$W/out x"
else
    skip "librispeech tests: flac not installed"
fi

# ---------------------------------------------------------------- zerospeech
ZS="$W/zr 2021"
mkwav "$ZS/phonetic/dev-clean/84-121123-0000.wav" 16000 0.3
mkwav "$ZS/phonetic/dev-clean/84-121123-0001.wav" 16000 0.3
mkwav "$ZS/phonetic/dev-clean/174-50561-0000.wav" 44100 0.3 2
printf '#file onset offset #phone prev-phone next-phone speaker\n84-121123-0000 0.05 0.12 AH B K 84\n' > "$ZS/phonetic/dev-clean/dev-clean.item"
mkwav "$ZS/phonetic/test-clean/61-70968-0000.wav" 16000 0.2
if have sox; then
    if run_dp "$W/log" zerospeech "$ZS" "$W/out zs"; then
        check "zerospeech: dev-clean manifest" header_is "$W/out zs/dev-clean.tsv" $'id\twav\tspeaker'
        check "zerospeech: 3 dev-clean files" rows_are "$W/out zs/dev-clean.tsv" 3
        check "zerospeech: test-clean manifest" rows_are "$W/out zs/test-clean.tsv" 1
        check "zerospeech: .item copied" cmp -s "$ZS/phonetic/dev-clean/dev-clean.item" "$W/out zs/dev-clean.item"
        check "zerospeech: missing test-clean.item warned" grep -q "test-clean has no .item" "$W/log"
        check "zerospeech: 44.1 kHz stereo converted" [ "$(rate_of "$W/out zs/wav/dev-clean/174-50561-0000.wav")" = "16000 1" ]
        check "zerospeech: converted file referenced" grep -q $'^174-50561-0000\twav/dev-clean/174-50561-0000.wav\t174$' "$W/out zs/dev-clean.tsv"
        check "zerospeech: 16 kHz file referenced in place" grep -q "^84-121123-0000	/.*zr 2021/phonetic/dev-clean/84-121123-0000.wav	84$" "$W/out zs/dev-clean.tsv"
    else
        bad "zerospeech import: $(tail -n3 "$W/log")"
    fi
else
    skip "zerospeech conversion tests: sox not installed"
fi
mkdir -p "$W/zs bad/phonetic/train"
expect_fail "zerospeech: wrong layout" "no phonetic/{dev,test}-{clean,other}/" zerospeech "$W/zs bad" "$W/out y"
expect_fail "zerospeech: missing ROOT" "no such folder" zerospeech "$W/zs none" "$W/out y"

# ---------------------------------------------------------------- spokencoco
SC="$W/spoken coco"
mkwav "$SC/wavs/train/0/m1-A_1_1.wav" 16000 0.3
mkwav "$SC/wavs/train/0/m2-B_1_2.wav" 16000 0.3
mkwav "$SC/wavs/train/0/m3-C_2_3.wav" 16000 0.3
mkwav "$SC/wavs/val/0/m4-D_3_4.wav" 22050 0.3
python3 - "$SC" "$W" <<'PY'
import json, os, struct, sys
sc, w = sys.argv[1], sys.argv[2]
def e(img, spk, uid, wav, text): return {"image": img, "caption": {"text": text, "speaker": spk, "uttid": uid, "wav": wav}}
tr = {"data": [e("train2014/COCO_train2014_000000000001.jpg", "m1", "m1-A_1_1", "wavs/train/0/m1-A_1_1.wav", "A DOG ON A MAT"),
               e("train2014/COCO_train2014_000000000001.jpg", "m2", "m2-B_1_2", "wavs/train/0/m2-B_1_2.wav", "A BROWN DOG"),
               e("train2014/COCO_train2014_000000000002.jpg", "m3", "m3-C_2_3", "wavs/train/0/m3-C_2_3.wav", "TWO CATS")]}
va = {"data": [e("val2014/COCO_val2014_000000000003.jpg", "m4", "m4-D_3_4", "wavs/val/0/m4-D_3_4.wav", "A RED BUS")]}
json.dump(tr, open(os.path.join(sc, "SpokenCOCO_train_unrolled_karpathy.json"), "w"))
json.dump(va, open(os.path.join(sc, "SpokenCOCO_val_unrolled_karpathy.json"), "w"))
def npy(p, shape):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    hdr += ' ' * ((64 - (10 + len(hdr) + 1) % 64) % 64) + '\n'
    n = 1
    for d in shape: n *= d
    with open(p, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode()); f.write(struct.pack('<%df' % n, *[float(i) for i in range(n)]))
npy(os.path.join(w, "feat.npy"), (3, 2, 5)); npy(os.path.join(w, "boxes.npy"), (3, 2, 4)); npy(os.path.join(w, "badboxes.npy"), (3, 3, 4))
# image list in a different order than the JSON
open(os.path.join(w, "images.txt"), "w").write("val2014/COCO_val2014_000000000003.jpg\ntrain2014/COCO_train2014_000000000002.jpg\ntrain2014/COCO_train2014_000000000001.jpg\n")
PY
if have sox; then
    if run_dp "$W/log" spokencoco "$SC" "$W/out sc" --features "$W/feat.npy" --boxes "$W/boxes.npy" --image-list "$W/images.txt"; then
        M="$W/out sc/train.tsv"
        check "spokencoco: train manifest header" header_is "$M" $'id\twav\timage\tspeaker\ttext'
        check "spokencoco: 3 train captions" rows_are "$M" 3
        check "spokencoco: image rows follow the image list" bash -c "grep -q \$'^m1-A_1_1\t.*\t2\tm1\ta dog on a mat\$' '$M' && grep -q \$'^m3-C_2_3\t.*\t1\tm3\ttwo cats\$' '$M'"
        check "spokencoco: val row" grep -q $'^m4-D_3_4\twav/m4-D_3_4.wav\t0\tm4\ta red bus$' "$W/out sc/val.tsv"
        check "spokencoco: 22.05 kHz wav converted" [ "$(rate_of "$W/out sc/wav/m4-D_3_4.wav")" = "16000 1" ]
        check "spokencoco: features copied" cmp -s "$W/feat.npy" "$W/out sc/images.npy"
        check "spokencoco: boxes copied" cmp -s "$W/boxes.npy" "$W/out sc/boxes.npy"
    else
        bad "spokencoco import: $(tail -n3 "$W/log")"
    fi
    if run_dp "$W/log" spokencoco "$SC" "$W/out sc2" --features "$W/feat.npy"; then
        check "spokencoco: default whole-image boxes" [ "$(stat -c %s "$W/out sc2/boxes.npy")" -eq $((128 + 3 * 2 * 4 * 4)) ]
        check "spokencoco: rows in JSON order without a list" grep -q $'^m3-C_2_3\t.*\t1\tm3' "$W/out sc2/train.tsv"
    else
        bad "spokencoco without --boxes: $(tail -n3 "$W/log")"
    fi
else
    skip "spokencoco conversion tests: sox not installed"
fi
expect_fail "spokencoco: --features required" "features F.npy is required" spokencoco "$SC" "$W/out sc3"
expect_fail "spokencoco: boxes shape checked" "expected" spokencoco "$SC" "$W/out sc4" --features "$W/feat.npy" --boxes "$W/badboxes.npy"
mkdir -p "$W/sc empty"
expect_fail "spokencoco: wrong layout" "SpokenCOCO_train_unrolled_karpathy.json missing" spokencoco "$W/sc empty" "$W/out sc5" --features "$W/feat.npy"

# ---------------------------------------------------------------- staging / interrupted runs
mkdir -p "$W/busy"; echo x > "$W/busy/file"
expect_fail "non-empty unfinished OUT is refused" "not empty" zerospeech "$ZS" "$W/busy"
if have sox; then
    # an interrupted run leaves OUT.partial with debris; the rerun finishes and publishes OUT
    mkdir -p "$W/out rr.partial"; echo "id	wav" > "$W/out rr.partial/dev-clean.tsv.tmp"
    if run_dp "$W/log" zerospeech "$ZS" "$W/out rr"; then
        check "rerun after interruption: OUT complete, no .partial left" bash -c "[ -f '$W/out rr/.complete' ] && [ ! -e '$W/out rr.partial' ]"
    else
        bad "rerun after interruption: $(tail -n3 "$W/log")"
    fi
fi

# ---------------------------------------------------------------- tts
if ! PATH="$NOSOX_PATH" "$DP" tts "$W/out nt" > "$W/log" 2>&1; then
    check "tts without espeak-ng: install lines" bash -c "grep -q 'apt-get install espeak-ng' '$W/log' && grep -q 'brew install espeak-ng' '$W/log'"
else
    bad "tts without espeak-ng succeeded"
fi
if have espeak-ng && [ -f /usr/include/espeak-ng/speak_lib.h ] && [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    T="$W/out tts"
    if run_dp "$W/log" tts "$T" --images 12 --captions 2 --seed 5 --jobs 2; then
        check "tts: train manifest header" header_is "$T/train.tsv" $'id\twav\timage\tspeaker\ttext\talign'
        check "tts: ood manifest has no image column" header_is "$T/ood.tsv" $'id\twav\tspeaker\ttext\talign'
        check "tts: images.npy [12,16,192]" grep -qa "'shape': (12, 16, 192, )" "$T/images.npy"
        check "tts: boxes.npy [12,16,4]" grep -qa "'shape': (12, 16, 4, )" "$T/boxes.npy"
        check "tts: test.item and ood.item" bash -c "[ \$(wc -l < '$T/test.item') -gt 5 ] && [ \$(wc -l < '$T/ood.item') -gt 5 ]"
        check "tts: all wavs 16 kHz mono" python3 - "$T" <<'PY'
import os, sys, wave
d = sys.argv[1]
bad = [f for f in os.listdir(d + '/wav') if (lambda w: (w.getframerate(), w.getnchannels()))(wave.open(d + '/wav/' + f)) != (16000, 1)]
sys.exit(1 if bad else 0)
PY
        check "tts: test/ood voices never in train" python3 - "$T" <<'PY'
import sys
d = sys.argv[1]
def spk(f):
    rows = [l.rstrip('\n').split('\t') for l in open(d + '/' + f)][1:]
    col = 3 if f != 'ood.tsv' else 2
    return {r[col].split('_', 1)[1] for r in rows}   # the variant: whole variants are held out
tr = spk('train.tsv') | spk('val.tsv')
sys.exit(1 if (tr & spk('test.tsv')) or (tr & spk('ood.tsv')) else 0)
PY
        check "tts: alignment matches audio (fricative energy high in S, low in vowels)" python3 - "$T" <<'PY'
import os, sys, wave, array, statistics
d = sys.argv[1]
V = set("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
rs, rv = [], []
for f in os.listdir(d + '/align'):
    if not f.endswith('.phones'): continue
    w = wave.open(d + '/wav/' + f[:-7] + '.wav'); x = array.array('h', w.readframes(w.getnframes()))
    for line in open(d + '/align/' + f):
        a, b, p = line.split(); A, B = float(a) * 16000, float(b) * 16000
        seg = x[int(A + (B - A) / 4):int(B - (B - A) / 4)]    # middle half of the segment
        if len(seg) < 8: continue
        e = sum(v * v for v in seg) + 1e-9
        h = sum((seg[i] - seg[i - 1]) ** 2 for i in range(1, len(seg)))   # first difference: high-pass
        (rs if p == 'S' else rv if p in V else []).append(h / e)
ok = len(rs) >= 3 and statistics.median(rs) > 5 * statistics.median(rv)
print("    S: %d segments, median HF ratio %.2f; vowels: %d, median %.2f" % (len(rs), statistics.median(rs) if rs else 0, len(rv), statistics.median(rv)))
sys.exit(0 if ok else 1)
PY
        check "tts: stats.txt reports hours" grep -q "hours of speech per minute" "$T/stats.txt"
        check "tts: words file for every utterance" bash -c "[ \$(ls '$T/align' | grep -c words) -eq \$(ls '$T/wav' | wc -l) ]"
        # the C reader, when the header already has it
        if grep -q sv_disk_corpus_open "$HERE/ssl_vgs.h" && have cc; then
            printf '#define SSL_VGS_IMPLEMENTATION\n#include "%s/ssl_vgs.h"\n#include <stdio.h>\nint main(int c, char **v){sv_disk_corpus d; (void)c; if (sv_disk_corpus_open(v[1], &d)) { puts(sv_last_error()); return 1; } sv_disk_corpus_close(&d); return 0;}\n' "$HERE" > "$W/open.c"
            cc -std=c99 -O1 -o "$W/open" "$W/open.c" -lm && check "tts: sv_disk_corpus_open accepts it" "$W/open" "$T"
        else
            skip "sv_disk_corpus_open check: ssl_vgs.h has no corpus reader yet"
        fi
    else
        bad "tts tiny run: $(tail -n5 "$W/log")"
    fi
    # interrupted tts run (TERM once synthesis is under way), then the rerun resumes and finishes
    T2="$W/out tts2"
    "$DP" tts "$T2" --images 1500 --captions 2 --seed 9 --jobs 2 > "$W/log" 2>&1 &
    dp_pid=$!
    for i in $(seq 1 1200); do   # up to 120 s for planning; interrupt after the first utterances exist
        [ "$(ls "$T2.partial/wav" 2>/dev/null | wc -l)" -ge 20 ] && break
        kill -0 $dp_pid 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM $dp_pid 2>/dev/null   # background jobs of a script ignore SIGINT; the script traps TERM too
    # the script's own trap stops its workers; give it time, then make sure
    for i in $(seq 1 100); do kill -0 $dp_pid 2>/dev/null || break; sleep 0.1; done
    kill -KILL $dp_pid 2>/dev/null; wait $dp_pid 2>/dev/null
    check "tts interrupted: no OUT published, .partial kept" bash -c "[ ! -e '$T2/.complete' ] && [ -d '$T2.partial' ]"
    sleep 1
    n_before=$(ls "$T2.partial/wav" 2>/dev/null | wc -l)
    if run_dp "$W/log" tts "$T2" --images 1500 --captions 2 --seed 9 --jobs 2; then
        check "tts rerun: complete, every utterance in a manifest" bash -c "[ -f '$T2/.complete' ] && [ ! -e '$T2.partial' ] && [ \$(cat '$T2'/{train,val,test,ood}.tsv | grep -vc '^id') -eq \$(ls '$T2/wav' | wc -l) ]"
        if [ "$n_before" -gt 0 ]; then check "tts rerun resumed ($n_before utterances kept)" grep -q "resuming" "$W/log"; fi
        check "tts rerun: no temporary files left" bash -c "[ -z \"\$(find '$T2' -name '*.tmp*')\" ]"
    else
        bad "tts rerun after interruption: $(tail -n3 "$W/log")"
    fi
else
    skip "tts tests: espeak-ng, libespeak-ng-dev or dataset-fashion-mnist not installed (sudo apt-get install espeak-ng libespeak-ng-dev dataset-fashion-mnist)"
fi

# ---------------------------------------------------------------- builtin
TRAIN="${SV_TRAIN:-$HERE/train}"
if [ -x "$TRAIN" ] && "$TRAIN" --help 2>&1 | grep -q -- --write-builtin; then
    if SV_TRAIN="$TRAIN" run_dp "$W/log" builtin "$W/out bi" --images 10 --captions 2 --seed 3; then
        check "builtin: manifests and .complete" bash -c "[ -f '$W/out bi/.complete' ] && [ -f '$W/out bi/train.tsv' ] && [ -f '$W/out bi/test.item' ]"
        expect_fail "builtin: finished OUT refused" "already a finished corpus" builtin "$W/out bi"
        expect_fail "builtin: bad --regions" "must be detector or pixels" builtin "$W/bi2" --regions voxels
        expect_fail "builtin: bad --wav-format" "must be pcm16 or float32" builtin "$W/bi2" --wav-format mp3
        check "builtin: 16-bit PCM WAV by default (Python's wave module reads it)" python3 -c "import wave,glob; w=wave.open(sorted(glob.glob('$W/out bi/wav/*.wav'))[0]); assert w.getsampwidth() == 2 and w.getframerate() == 16000"
        if SV_TRAIN="$TRAIN" run_dp "$W/log" builtin "$W/bi4" --images 10 --captions 1 --seed 3 --wav-format float32; then
            check "builtin: --wav-format float32 writes IEEE float WAV" bash -c "[ \"\$(od -An -tu2 -j20 -N2 '$W/bi4/wav/train_00000.wav' | tr -d ' ')\" = 3 ]"
        else
            bad "builtin --wav-format float32: $(tail -n3 "$W/log")"
        fi
        if SV_TRAIN="$TRAIN" run_dp "$W/log" builtin "$W/bi3" --images 10 --captions 1 --seed 3 --regions pixels; then
            check "builtin: --regions pixels gives other region features, the same boxes shape" bash -c \
                "! cmp -s '$W/bi3/images.npy' '$W/out bi/images.npy' && [ \$(stat -c %s '$W/bi3/images.npy') = \$(stat -c %s '$W/out bi/images.npy') ]"
        else
            bad "builtin --regions pixels: $(tail -n3 "$W/log")"
        fi
    else
        bad "builtin: $(tail -n3 "$W/log")"
    fi
else
    skip "builtin: $TRAIN has no --write-builtin mode yet"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
