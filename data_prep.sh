#!/usr/bin/env bash
# data_prep.sh - make corpus folders in the layout ssl_vgs reads (see `data_prep.sh --help`).
# Never downloads anything: every input is a local path.
set -euo pipefail

PROG=data_prep.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<'EOF'
usage: data_prep.sh SUBCOMMAND ARGS...

Subcommands (each builds OUT.partial/ and renames it to OUT when finished, then OUT/.complete
marks it finished; a finished OUT is never overwritten):

  builtin OUT [--images N] [--captions K] [--seed S] [--regions detector|pixels] [--wav-format pcm16|float32]
      The built-in generated corpus (formant synthesiser, shape pictures), written by
      `./train --write-builtin` (built with `make train` if needed). Image regions come from
      a simulated object detector (default) or are raw 8x8 pixel patches. WAV files are 16-bit
      PCM (default, as every other corpus here) or float32 (the in-memory audio bit for bit).

  tts OUT [--images N] [--captions K] [--seed S] [--jobs J] [--fmnist DIR] [--canvas 32|48] [--ood N]
      Spoken captions of real pictures: scenes of 1-3 tinted Fashion-MNIST items on a canvas
      (regions = 8x8x3 patches, boxes = patch boxes), captions from a grammar, each read by an
      espeak-ng voice (accent x variant x pitch x rate; whole voices held out for test and ood),
      phone/word alignments from espeak-ng phoneme events (tools/espeak_align.c), ZeroSpeech
      .item files for val, test and ood (val: the ABX curve of ./train). --fmnist defaults to
      /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist). Defaults: 2000 images, 2 captions, 4 jobs or nproc.
      Rerunning after an interruption resumes (utterances already synthesised are kept).

  spokencoco ROOT OUT --features F.npy [--boxes B.npy] [--image-list L.txt]
      SpokenCOCO (ROOT/SpokenCOCO_{train,val}_unrolled_karpathy.json, optional
      SpokenCOCO_test_unrolled_karpathy.json, + ROOT/wavs/...) to manifests. Image features are
      yours: F.npy [N, R, D] float32 (the FaST-VGS detector features are [N, 36, 2048]),
      B.npy [N, R, 4] boxes (x1,y1,x2,y2) in [0,1] (default: whole-image boxes), and
      L.txt with one image path per line ("val2014/COCO_val2014_000000325114.jpg", as in the
      JSON), line i = row i of F.npy. Without --image-list the rows follow the order in which
      images first appear in train, val, test JSON. Wavs are referenced by absolute path
      (converted to 16 kHz into OUT/wav/ only when they are not 16 kHz mono).

  librispeech ROOT OUT
      LibriSpeech (ROOT/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac + SPEAKER-CHAPTER.trans.txt;
      ROOT may also be a parent holding several such trees) to OUT/wav/*.wav (16 kHz) and the
      audio-only manifest OUT/train.tsv (id wav speaker text).

  zerospeech ROOT OUT
      ZeroSpeech 2021 phonetic sets (ROOT/phonetic/{dev,test}-{clean,other}/*.wav and the
      subset's *.item, or ROOT pointing at phonetic/ itself) to one audio-only manifest per
      subset, OUT/<subset>.tsv (id wav speaker), and OUT/<subset>.item copied.

Options for all: -h/--help. Environment: SV_TRAIN=path overrides ./train for `builtin`.
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
note() { echo "$PROG: $*" >&2; }

# Missing tools are collected (want, want_file) and reported all at once (need_all), so that one
# run names everything to install instead of one tool per failed run.
MISSING=(); APT=(); BREW=(); HINTS=()
# want TOOL APT_PACKAGE BREW_PACKAGE [WHAT]: remember TOOL when it is not installed
want() {
    command -v "$1" >/dev/null 2>&1 && return 0
    MISSING+=("'$1'${4:+ ($4)}"); APT+=("$2"); [ -z "$3" ] || BREW+=("$3")
}
# want_file WHAT APT_PACKAGE BREW_PACKAGE HINT FILE...: remember WHAT when none of the FILEs exists
want_file() {
    local what="$1" apt="$2" brew="$3" hint="$4" f; shift 4
    for f in "$@"; do [ -e "$f" ] && return 0; done
    MISSING+=("$what"); APT+=("$apt"); [ -z "$brew" ] || BREW+=("$brew"); [ -z "$hint" ] || HINTS+=("$hint")
}
# need_all: exit naming every missing tool, with one install line per system
need_all() {
    [ ${#MISSING[@]} -eq 0 ] && return 0
    local list="" m h
    for m in "${MISSING[@]}"; do list="${list:+$list, }$m"; done
    echo "$PROG: error: $SUB needs ${#MISSING[@]} thing(s) that are not installed: $list. Install them with:" >&2
    echo "    sudo apt-get install $(printf '%s\n' "${APT[@]}" | awk '!s[$0]++' | tr '\n' ' ')    # Debian/Ubuntu" >&2
    [ ${#BREW[@]} -eq 0 ] || echo "    brew install $(printf '%s\n' "${BREW[@]}" | awk '!s[$0]++' | tr '\n' ' ')    # macOS (Homebrew)" >&2
    for h in "${HINTS[@]}"; do echo "    $h" >&2; done
    exit 1
}
need() { want "$@"; need_all; }

nproc_() { nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2; }

# ---------------------------------------------------------------- staging: OUT.partial -> OUT
# begin_out OUT: refuses a finished OUT and a non-empty unfinished one; sets STAGE=OUT.partial
# (kept across an interrupted run, so work is resumed where the subcommand supports it).
begin_out() {
    OUT="${1%/}"
    [ -n "$OUT" ] || die "empty OUT"
    if [ -e "$OUT/.complete" ]; then
        die "$OUT is already a finished corpus (has .complete); remove it or choose another OUT"
    fi
    if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
        die "$OUT exists, is not empty and has no .complete marker (an unrelated folder?); remove it or choose another OUT"
    fi
    STAGE="$OUT.partial"
    mkdir -p "$STAGE"
    [ -e "$STAGE/.complete" ] && rm -f "$STAGE/.complete"
    return 0
}

# finish_out: writes .complete last and publishes the folder with one rename.
finish_out() {
    echo "complete $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$STAGE/.complete.tmp"
    mv "$STAGE/.complete.tmp" "$STAGE/.complete"
    [ -d "$OUT" ] && rmdir "$OUT"
    mv "$STAGE" "$OUT"
    note "done: $OUT"
}

# wav_rate FILE: sample rate and channels of a RIFF/WAVE file ("RATE CHANNELS"), from the fmt chunk.
wav_info() {
    if command -v soxi >/dev/null 2>&1; then
        echo "$(soxi -r "$1" 2>/dev/null || echo 0) $(soxi -c "$1" 2>/dev/null || echo 0)"
    else
        # canonical header: channels at byte 22 (u16), rate at byte 24 (u32)
        local ch rate
        ch=$(od -An -tu2 -j22 -N2 "$1" | tr -d ' ')
        rate=$(od -An -tu4 -j24 -N4 "$1" | tr -d ' ')
        echo "${rate:-0} ${ch:-0}"
    fi
}

# to16k IN OUTFILE: OUTFILE becomes a 16 kHz mono 16-bit WAV of IN (any format sox reads).
to16k() {
    if ! command -v sox >/dev/null 2>&1; then
        local info
        info=$(wav_info "$1")
        die "$1: ${info%% *} Hz, 16000 Hz mono needed and sox is not installed (sudo apt-get install sox libsox-fmt-all | brew install sox)"
    fi
    sox -q "$1" -r 16000 -c 1 -b 16 -e signed-integer "$2.tmp.wav" || die "$1: sox could not convert it"
    mv "$2.tmp.wav" "$2"
}

# ---------------------------------------------------------------- option parsing helper
# parse_opts "name ..." ARGS...: fills OPT_<name> from --name value pairs, only for the names
# listed (dashes as underscores); positional args into POS[]. An option the subcommand does not
# have, a missing value or an option given twice is an error (--imagez 20 must not build 2000).
parse_opts() {
    local allowed=" $1 " seen=" " k list=""; shift
    for k in $allowed; do list="${list:+$list }--${k//_/-}"; done
    POS=()
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) usage; exit 0 ;;
            --*) k="${1#--}"; k="${k//-/_}"
                 case "$allowed" in
                     *" $k "*) ;;
                     *) die "$SUB: unknown option $1 (${list:+options: $list; }see $PROG --help)" ;;
                 esac
                 case "$seen" in *" $k "*) die "$SUB: $1 is given twice" ;; esac
                 seen="$seen$k "
                 { [ $# -ge 2 ] && [ -n "$2" ] && [[ "$2" != --* ]]; } || die "$SUB: $1 needs a value"
                 printf -v "OPT_$k" '%s' "$2"; shift 2 ;;
            -?*) die "$SUB: unknown option $1 (see $PROG --help)" ;;
            *) POS+=("$1"); shift ;;
        esac
    done
}

is_uint() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
# check_uint OPTION VALUE MIN MAX: a whole number in MIN..MAX, else an error naming the option
check_uint() {
    is_uint "$2" || die "$SUB: $1: '$2' is not a whole number"
    local v="${2#"${2%%[!0]*}"}"; v="${v:-0}"          # no leading zeros (bash would read octal)
    { [ ${#v} -le 18 ] && (( v >= $3 && v <= $4 )); } || die "$SUB: $1: $2 is out of range: $3..$4"
}

# ================================================================ builtin
cmd_builtin() {
    OPT_images=""; OPT_captions=""; OPT_seed=""; OPT_regions=""; OPT_wav_format=""
    parse_opts "images captions seed regions wav_format" "$@"
    [ ${#POS[@]} -eq 1 ] || die "usage: $PROG builtin OUT [--images N] [--captions K] [--seed S] [--regions detector|pixels] [--wav-format pcm16|float32]"
    local args=()
    [ -n "$OPT_images" ] && { check_uint --images "$OPT_images" 1 10000000; args+=(--images "$OPT_images"); }
    [ -n "$OPT_captions" ] && { check_uint --captions "$OPT_captions" 1 100; args+=(--captions "$OPT_captions"); }
    [ -n "$OPT_seed" ] && { check_uint --seed "$OPT_seed" 0 999999999999999999; args+=(--seed "$OPT_seed"); }
    case "$OPT_regions" in
        "") ;;
        detector|pixels) args+=(--regions "$OPT_regions") ;;
        *) die "--regions must be detector or pixels, not '$OPT_regions'" ;;
    esac
    case "$OPT_wav_format" in
        "") ;;
        pcm16|float32) args+=(--wav-format "$OPT_wav_format") ;;
        *) die "--wav-format must be pcm16 or float32, not '$OPT_wav_format'" ;;
    esac
    local train="${SV_TRAIN:-}"
    if [ -z "$train" ]; then
        want make make make
        want cc gcc gcc "a C compiler"
        need_all
        (cd "$HERE" && make -s train) || die "make train failed"
        train="$HERE/train"
    fi
    begin_out "${POS[0]}"
    # the library refuses to write into a finished folder, and a partial one is written over
    "$train" --write-builtin "$STAGE" "${args[@]}" || die "$train --write-builtin failed"
    [ -e "$STAGE/.complete" ] || die "$train did not finish the corpus (no .complete)"
    [ -d "$OUT" ] && rmdir "$OUT"
    mv "$STAGE" "$OUT"
    note "done: $OUT"
}

# ================================================================ librispeech
cmd_librispeech() {
    parse_opts "" "$@"
    [ ${#POS[@]} -eq 2 ] || die "usage: $PROG librispeech ROOT OUT"
    local root="${POS[0]}"
    [ -d "$root" ] || die "$root: no such folder (LibriSpeech ROOT)"
    need flac flac flac "to decode LibriSpeech FLAC"
    local list
    list=$(mktemp)
    trap 'rm -f "$list"' RETURN
    find "$root" -name '*.trans.txt' -print0 | sort -z > "$list"
    [ -s "$list" ] || die "$root: no SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt found (not a LibriSpeech tree)"
    begin_out "${POS[1]}"
    mkdir -p "$STAGE/wav"
    local man="$STAGE/train.tsv.tmp" n=0 missing=0
    printf 'id\twav\tspeaker\ttext\n' > "$man"
    while IFS= read -r -d '' trans; do
        local d; d=$(dirname "$trans")
        while IFS= read -r line || [ -n "$line" ]; do
            line=${line%$'\r'}
            [ -n "$line" ] || continue
            local id="${line%% *}" text="${line#* }"
            local src="$d/$id.flac" dst="$STAGE/wav/$id.wav"
            if [ ! -f "$src" ]; then
                note "warning: $src listed in $trans but missing; skipped"; missing=$((missing + 1)); continue
            fi
            if [ ! -s "$dst" ]; then
                flac -s -d -f -o "$dst.tmp.wav" "$src" || die "$src: flac could not decode it"
                local info; info=$(wav_info "$dst.tmp.wav")
                if [ "$info" != "16000 1" ]; then to16k "$dst.tmp.wav" "$dst"; rm -f "$dst.tmp.wav"
                else mv "$dst.tmp.wav" "$dst"; fi
            fi
            text=$(printf '%s' "$text" | tr 'A-Z\t' 'a-z ')
            printf '%s\twav/%s.wav\t%s\t%s\n' "$id" "$id" "${id%%-*}" "$text" >> "$man"
            n=$((n + 1))
        done < "$trans"
    done < "$list"
    [ "$n" -gt 0 ] || die "$root: transcripts list no utterance with a .flac file"
    mv "$man" "$STAGE/train.tsv"
    printf 'librispeech import of %s\nutterances: %d (missing flac: %d)\nhours: %s\n' "$root" "$n" "$missing" \
        "$(du_hours "$STAGE/wav")" > "$STAGE/stats.txt"
    finish_out
}

# hours of 16-bit 16 kHz mono audio in a folder of WAVs (header bytes neglected)
du_hours() {
    local bytes
    bytes=$(find "$1" -name '*.wav' -type f -print0 | xargs -0 -r cat | wc -c)
    awk -v b="$bytes" 'BEGIN { printf "%.3f", b / 32000 / 3600 }'
}

# ================================================================ zerospeech
cmd_zerospeech() {
    parse_opts "" "$@"
    [ ${#POS[@]} -eq 2 ] || die "usage: $PROG zerospeech ROOT OUT"
    local root="${POS[0]%/}" ph
    [ -d "$root" ] || die "$root: no such folder (ZeroSpeech 2021 ROOT)"
    if [ -d "$root/phonetic" ]; then ph="$root/phonetic"; else ph="$root"; fi
    local subsets=() s
    for s in dev-clean dev-other test-clean test-other; do
        [ -d "$ph/$s" ] && subsets+=("$s")
    done
    [ ${#subsets[@]} -gt 0 ] || die "$root: no phonetic/{dev,test}-{clean,other}/ folder (not a ZeroSpeech 2021 dataset)"
    begin_out "${POS[1]}"
    local abs; abs=$(cd "$ph" && pwd)
    for s in "${subsets[@]}"; do
        local man="$STAGE/$s.tsv.tmp" n=0 f
        printf 'id\twav\tspeaker\n' > "$man"
        while IFS= read -r -d '' f; do
            local b; b=$(basename "$f" .wav)
            local info; info=$(wav_info "$f")
            local wav="$abs/$s/$b.wav"
            if [ "$info" != "16000 1" ]; then
                mkdir -p "$STAGE/wav/$s"
                [ -s "$STAGE/wav/$s/$b.wav" ] || to16k "$f" "$STAGE/wav/$s/$b.wav"
                wav="wav/$s/$b.wav"
            fi
            printf '%s\t%s\t%s\n' "$b" "$wav" "${b%%-*}" >> "$man"
            n=$((n + 1))
        done < <(find "$ph/$s" -maxdepth 1 -name '*.wav' -print0 | sort -z)
        [ "$n" -gt 0 ] || die "$ph/$s: no .wav files"
        mv "$man" "$STAGE/$s.tsv"
        local items=("$ph/$s"/*.item)
        if [ -e "${items[0]}" ]; then
            cp "${items[0]}" "$STAGE/$s.item.tmp" && mv "$STAGE/$s.item.tmp" "$STAGE/$s.item"
        else
            note "warning: $ph/$s has no .item file (ABX cannot run on $s)"
        fi
        echo "$s: $n files" >> "$STAGE/stats.txt"
    done
    finish_out
}

# ================================================================ spokencoco
cmd_spokencoco() {
    OPT_features=""; OPT_boxes=""; OPT_image_list=""
    parse_opts "features boxes image_list" "$@"
    [ ${#POS[@]} -eq 2 ] || die "usage: $PROG spokencoco ROOT OUT --features F.npy [--boxes B.npy] [--image-list L.txt]"
    local root="${POS[0]%/}"
    [ -d "$root" ] || die "$root: no such folder (SpokenCOCO ROOT)"
    [ -n "$OPT_features" ] || die "--features F.npy is required (region features [N, R, D] float32)"
    [ -f "$OPT_features" ] || die "$OPT_features: no such file"
    [ -z "$OPT_boxes" ] || [ -f "$OPT_boxes" ] || die "$OPT_boxes: no such file"
    [ -z "$OPT_image_list" ] || [ -f "$OPT_image_list" ] || die "$OPT_image_list: no such file"
    local j
    for j in train val; do
        [ -f "$root/SpokenCOCO_${j}_unrolled_karpathy.json" ] ||
            die "$root: SpokenCOCO_${j}_unrolled_karpathy.json missing (not a SpokenCOCO root)"
    done
    need python3 python3 python "to read the JSON"
    begin_out "${POS[1]}"
    python3 - "$root" "$STAGE" "$OPT_features" "$OPT_boxes" "$OPT_image_list" <<'PY' || die "spokencoco import failed"
import json, os, struct, sys, shutil
root, out, feat, boxes, ilist = sys.argv[1:6]
def die(m): sys.stderr.write("data_prep.sh: error: %s\n" % m); sys.exit(1)
def npy_shape(p):
    with open(p, 'rb') as f:
        if f.read(6) != b'\x93NUMPY': die(p + ": not an NPY file")
        major = f.read(2)[0]
        hl = struct.unpack('<H' if major == 1 else '<I', f.read(2 if major == 1 else 4))[0]
        h = f.read(hl).decode('latin1')
    import ast
    d = ast.literal_eval(h)
    if d['descr'] not in ('<f4', '<f8'): die(p + ": dtype %s, float32 expected" % d['descr'])
    return tuple(d['shape'])
fs = npy_shape(feat)
if len(fs) != 3: die(feat + ": shape %s, [N, R, D] expected" % (fs,))
splits = [('train', 'train'), ('val', 'val'), ('test', 'test')]
data = {}
for name, j in splits:
    p = os.path.join(root, 'SpokenCOCO_%s_unrolled_karpathy.json' % j)
    if not os.path.exists(p): continue
    with open(p) as f:
        d = json.load(f)
    if not isinstance(d, dict) or 'data' not in d: die(p + ": no top-level 'data' list")
    data[name] = d['data']
order = {}
if ilist:
    with open(ilist) as f:
        for i, line in enumerate(l.strip() for l in f):
            if line: order.setdefault(line, i)
else:
    for name, _ in splits:
        for e in data.get(name, []):
            order.setdefault(e.get('image', ''), len(order))
if len(order) > fs[0] or (ilist and max(order.values()) >= fs[0]):
    die("%s has %d rows but %d images are listed" % (feat, fs[0], len(order)))
shutil.copyfile(feat, os.path.join(out, 'images.npy.tmp')); os.replace(os.path.join(out, 'images.npy.tmp'), os.path.join(out, 'images.npy'))
if boxes:
    bs = npy_shape(boxes)
    if bs != (fs[0], fs[1], 4): die("%s: shape %s, [%d, %d, 4] expected" % (boxes, bs, fs[0], fs[1]))
    shutil.copyfile(boxes, os.path.join(out, 'boxes.npy.tmp'))
else:
    n = fs[0] * fs[1]
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, 4), }" % (fs[0], fs[1])
    hdr += ' ' * ((64 - (10 + len(hdr) + 1) % 64) % 64) + '\n'
    with open(os.path.join(out, 'boxes.npy.tmp'), 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode('latin1'))
        one = struct.pack('<4f', 0.0, 0.0, 1.0, 1.0)
        for _ in range(n): f.write(one)
os.replace(os.path.join(out, 'boxes.npy.tmp'), os.path.join(out, 'boxes.npy'))
aroot = os.path.abspath(root)
bad = []
for name, _ in splits:
    if name not in data: continue
    rows, seen = [], set()
    for k, e in enumerate(data[name]):
        cap = e.get('caption')
        if not isinstance(cap, dict) or 'wav' not in cap or 'image' not in e:
            die("SpokenCOCO_%s_unrolled_karpathy.json: entry %d lacks image or caption.wav" % (name, k))
        img = e['image']
        if img not in order: die("image %s (entry %d of %s) is not in the image list" % (img, k, name))
        wav = os.path.join(aroot, cap['wav'])
        if not os.path.exists(wav): bad.append(wav); continue
        uid = cap.get('uttid') or os.path.splitext(os.path.basename(cap['wav']))[0]
        uid = uid.replace('\t', ' ').replace(' ', '')
        if uid in seen: continue
        seen.add(uid)
        text = ' '.join(str(cap.get('text', '')).lower().split())
        rows.append((uid, wav, order[img], cap.get('speaker', '').replace('\t', ' ') or 'unknown', text))
    print("%s: %d captions" % (name, len(rows)), file=sys.stderr)
    if not rows: continue  # an empty manifest is not a valid one: the split is just absent
    with open(os.path.join(out, name + '.tsv.tmp'), 'w') as f:
        f.write('id\twav\timage\tspeaker\ttext\n')
        for r in rows: f.write('%s\t%s\t%d\t%s\t%s\n' % r)
    os.replace(os.path.join(out, name + '.tsv.tmp'), os.path.join(out, name + '.tsv'))
if bad:
    die("%d wav files named in the JSON are missing, e.g. %s" % (len(bad), bad[0]))
with open(os.path.join(out, 'stats.txt'), 'w') as f:
    f.write('spokencoco import of %s\nimages: %d rows (R=%d, D=%d)\n' % (root, fs[0], fs[1], fs[2]))
PY
    # convert any wav that is not 16 kHz mono into OUT/wav and point the manifest at the copy
    local m
    for m in "$STAGE"/train.tsv "$STAGE"/val.tsv "$STAGE"/test.tsv; do
        [ -f "$m" ] || continue
        local tmp="$m.tmp" id wav img spk text
        {
            IFS= read -r header; printf '%s\n' "$header"
            while IFS=$'\t' read -r id wav img spk text; do
                local info; info=$(wav_info "$wav")
                if [ "$info" != "16000 1" ]; then
                    mkdir -p "$STAGE/wav"
                    [ -s "$STAGE/wav/$id.wav" ] || to16k "$wav" "$STAGE/wav/$id.wav"
                    wav="wav/$id.wav"
                fi
                printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$wav" "$img" "$spk" "$text"
            done
        } < "$m" > "$tmp"
        mv "$tmp" "$m"
    done
    finish_out
}

# ================================================================ tts
cmd_tts() {
    OPT_images=2000; OPT_captions=2; OPT_seed=1; OPT_jobs=""; OPT_fmnist=/usr/share/datasets/fashion-mnist
    OPT_canvas=32; OPT_ood=""
    parse_opts "images captions seed jobs fmnist canvas ood" "$@"
    [ ${#POS[@]} -eq 1 ] || die "usage: $PROG tts OUT [--images N] [--captions K] [--seed S] [--jobs J] [--fmnist DIR] [--canvas 32|48] [--ood N]"
    check_uint --images "$OPT_images" 3 1000000
    check_uint --captions "$OPT_captions" 1 100
    check_uint --seed "$OPT_seed" 0 999999999999999999
    [ -n "$OPT_jobs" ] || OPT_jobs=$(nproc_)
    check_uint --jobs "$OPT_jobs" 1 1024
    [ "$OPT_canvas" = 32 ] || [ "$OPT_canvas" = 48 ] || die "tts: --canvas must be 32 or 48, not '$OPT_canvas'"
    [ -n "$OPT_ood" ] || OPT_ood=$(( OPT_images * OPT_captions / 10 > 20 ? OPT_images * OPT_captions / 10 : 20 ))
    check_uint --ood "$OPT_ood" 0 10000000
    [ -d "$OPT_fmnist" ] || [ "$OPT_fmnist" = /usr/share/datasets/fashion-mnist ] || die "tts: --fmnist $OPT_fmnist: no such folder"
    # every missing tool in one message
    want espeak-ng espeak-ng espeak-ng "speech synthesis"
    want python3 python3 python "scene and caption generation"
    want cc gcc gcc "to compile tools/espeak_align.c"
    want_file "the espeak-ng C headers (speak_lib.h)" libespeak-ng-dev espeak-ng "" \
        /usr/include/espeak-ng/speak_lib.h /usr/local/include/espeak-ng/speak_lib.h /opt/homebrew/include/espeak-ng/speak_lib.h
    local fm="$OPT_fmnist"
    local f fm_missing=""
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [ -f "$fm/$f.gz" ] || [ -f "$fm/$f" ] || fm_missing="$f"
    done
    [ -z "$fm_missing" ] || want_file "Fashion-MNIST ($fm/$fm_missing(.gz) missing)" dataset-fashion-mnist "" \
        "Fashion-MNIST: the Debian package goes to /usr/share/datasets/fashion-mnist; elsewhere pass --fmnist DIR holding the four idx files" \
        "$fm/$fm_missing"
    need_all
    local data; data=$(espeak-ng --version | sed -n 's/.*Data at: *//p')
    [ -d "$data/voices/!v" ] || data=""
    begin_out "${POS[0]}"
    local t0; t0=$(date +%s)
    # helper, compiled on the fly against libespeak-ng
    local bin="$STAGE/.espeak_align"
    if [ ! -x "$bin" ] || [ "$HERE/tools/espeak_align.c" -nt "$bin" ]; then
        cc -O2 -std=c99 -D_DEFAULT_SOURCE -o "$bin" "$HERE/tools/espeak_align.c" -lespeak-ng -lm ||
            die "compiling tools/espeak_align.c against libespeak-ng failed"
    fi
    local plan="$OPT_images $OPT_captions $OPT_seed $OPT_canvas $OPT_ood $fm"
    if [ ! -f "$STAGE/.plan.done" ] || [ "$(cat "$STAGE/.plan.done")" != "$plan" ]; then
        [ -f "$STAGE/.plan.done" ] && { note "options changed since the interrupted run: starting over"; rm -rf "$STAGE/wav" "$STAGE/align"; }
        tts_plan "$fm" "$STAGE" "$OPT_seed" "$OPT_images" "$OPT_captions" "$OPT_canvas" "$OPT_ood" "$data" ||
            die "tts: planning scenes/captions failed"
        echo "$plan" > "$STAGE/.plan.done"
    else
        note "resuming the interrupted run in $STAGE"
    fi
    mkdir -p "$STAGE/wav" "$STAGE/align"
    local t1; t1=$(date +%s)
    local pids=() w fail=0
    # an interrupted run stops its workers too (they would race with a rerun); done utterances stay
    trap 'kill "${pids[@]}" 2>/dev/null; echo "$PROG: interrupted; rerun the same command to resume" >&2; exit 130' INT TERM
    for ((w = 0; w < OPT_jobs; w++)); do
        "$bin" "$STAGE/jobs.tsv" "$STAGE" "$w" "$OPT_jobs" > "$STAGE/.worker$w.log" &
        pids+=($!)
    done
    for w in "${pids[@]}"; do wait "$w" || fail=1; done
    trap - INT TERM
    [ "$fail" = 0 ] || die "tts: synthesis failed (see messages above); rerun to resume"
    local t2; t2=$(date +%s)
    tts_finish "$STAGE" "$((t1 - t0))" "$((t2 - t1))" "$OPT_jobs" || die "tts: writing manifests failed"
    rm -f "$STAGE"/.worker*.log "$bin" "$STAGE/.plan.done"
    finish_out
    cat "$OUT/stats.txt" >&2
}

tts_plan() {
    python3 - "$@" <<'PY'
import gzip, os, random, struct, sys, array
fm, out, seed, n_img, K, canvas, n_ood, data = sys.argv[1:9]
seed, n_img, K, canvas, n_ood = int(seed), int(n_img), int(K), int(canvas), int(n_ood)
def die(m): sys.stderr.write("data_prep.sh: error: %s\n" % m); sys.exit(1)
def idx(name):
    p = os.path.join(fm, name)
    raw = gzip.open(p + '.gz').read() if os.path.exists(p + '.gz') else open(p, 'rb').read()
    magic = struct.unpack('>I', raw[:4])[0]
    if magic == 2051:
        n, h, w = struct.unpack('>III', raw[4:16])
        if len(raw) != 16 + n * h * w: die(p + ": truncated idx file")
        return raw[16:], n
    if magic == 2049:
        n = struct.unpack('>I', raw[4:8])[0]
        return raw[8:8 + n], n
    die(p + ": not an idx file (magic %d)" % magic)
pix = {}; lab = {}
for part in ('train', 't10k'):
    pix[part], n1 = idx(part + '-images-idx3-ubyte')
    lab[part], n2 = idx(part + '-labels-idx1-ubyte')
    if n1 != n2: die("Fashion-MNIST %s: %d images but %d labels" % (part, n1, n2))
by_class = {p: [[] for _ in range(10)] for p in pix}
for p in pix:
    for i, c in enumerate(lab[p]): by_class[p][c].append(i)
NOUNS = [["t-shirt", "top", "tee"], ["pair of trousers", "pair of pants", "trousers"], ["pullover", "sweater", "jumper"],
         ["dress", "frock"], ["coat", "jacket"], ["sandal", "summer shoe"], ["shirt", "blouse"],
         ["sneaker", "trainer", "running shoe"], ["bag", "handbag", "purse"], ["ankle boot", "boot"]]
COLOURS = [("red", (0.9, 0.15, 0.1)), ("green", (0.15, 0.8, 0.2)), ("blue", (0.15, 0.3, 0.95)), ("yellow", (0.95, 0.9, 0.1)),
           ("orange", (1.0, 0.55, 0.05)), ("purple", (0.6, 0.2, 0.8)), ("pink", (1.0, 0.5, 0.75)), ("white", (0.95, 0.95, 0.95))]
REL = {0: ["to the left of", "left of", "on the left of"], 1: ["to the right of", "right of", "on the right of"],
       2: ["above", "over", "on top of"], 3: ["below", "under", "underneath"]}
G = canvas // 8
n_test = max(1, n_img // 10); n_val = max(1, n_img // 20); n_train = max(1, n_img - n_test - n_val)
n_img = n_train + n_val + n_test
def split_of(i): return 'train' if i < n_train else 'val' if i < n_train + n_val else 'test'
def paste(img, part, k, col, x0, y0, s, rng):
    base = k * 784
    src = pix[part]
    for yy in range(s):
        sy0 = yy * 28 // s; sy1 = max(sy0 + 1, (yy + 1) * 28 // s)
        for xx in range(s):
            sx0 = xx * 28 // s; sx1 = max(sx0 + 1, (xx + 1) * 28 // s)
            acc = 0; cnt = 0
            for sy in range(sy0, sy1):
                row = base + sy * 28
                for sx in range(sx0, sx1): acc += src[row + sx]; cnt += 1
            g = acc / (255.0 * cnt)
            if g <= 0.02: continue
            X, Y = x0 + xx, y0 + yy
            if 0 <= X < canvas and 0 <= Y < canvas:
                o = (Y * canvas + X) * 3
                for c in range(3): img[o + c] = img[o + c] * (1 - g) + g * col[c]
regions = array.array('f'); boxes = array.array('f')
meta, jobs = [], []
# voices: espeak-ng accents x variants; whole variants held out for test and ood
ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward",
            "grandma", "grandpa", "iven", "john", "linda", "max", "michel", "norbert", "paul", "pedro", "quincy",
            "rob", "robert", "steph", "travis", "victor", "zac", "Mike", "Gene", "Lee", "Jacky", "Hugo", "Denis"]
vdir = os.path.join(data, 'voices', '!v') if data else ''
if vdir and os.path.isdir(vdir):
    have = set(os.listdir(vdir)); VARIANTS = [v for v in VARIANTS if v in have] or ["m1", "f1"]
vdir2 = os.path.join(data, 'voices') if data else ''
rng = random.Random(seed)
rng.shuffle(VARIANTS)
nv = len(VARIANTS); n_te = max(1, nv // 6); n_oo = max(1, nv // 6)
groups = {'test': VARIANTS[:n_te], 'ood': VARIANTS[n_te:n_te + n_oo], 'train': VARIANTS[n_te + n_oo:]}
speakers = {}
for g, vs in groups.items():
    lst = []
    for v in vs:
        for a in ACCENTS:
            r = random.Random("%d/%s/%s" % (seed, a, v))
            lst.append(("%s_%s" % (a, v), "%s+%s" % (a, v), r.randint(25, 75), r.randint(145, 205), r.randint(30, 80)))
    rng.shuffle(lst)
    speakers[g] = lst
spk_cycle = {g: 0 for g in speakers}
def pick_speakers(g, k):
    lst = speakers[g]; res = []
    for _ in range(k):
        res.append(lst[spk_cycle[g] % len(lst)]); spk_cycle[g] += 1
    if spk_cycle[g] >= len(lst): rng.shuffle(lst); spk_cycle[g] = 0
    return res
def phrase(o, r, art="a"):
    name = r.choice(NOUNS[o[0]]); col = COLOURS[o[1]][0]
    size = r.choice(["", "", "big ", "large "]) if o[3] else r.choice(["", "", "small ", "little "])
    if art == "a" and (size or col)[0] in "aeiou": art = "an"
    return "%s %s%s %s" % (art, size, col, name)
def caption(objs, rel, r):
    if len(objs) == 1:
        t = r.choice(["{a}", "there is {a}", "a picture of {a}", "{a} on a dark background", "i see {a}"])
        return t.format(a=phrase(objs[0], r))
    a, b = objs[0], objs[1]
    inv = {0: 1, 1: 0, 2: 3, 3: 2}[rel]
    form = r.randrange(4)
    if form == 0: s = "%s %s %s" % (phrase(a, r), r.choice(REL[rel]), phrase(b, r))
    elif form == 1: s = "%s %s %s" % (phrase(b, r), r.choice(REL[inv]), phrase(a, r))
    elif form == 2: s = "there is %s %s %s" % (phrase(a, r), r.choice(REL[rel]), phrase(b, r, "the"))
    else: s = "%s and %s" % (phrase(a, r), phrase(b, r))
    if len(objs) == 3: s += r.choice([" and %s", " with %s in the corner", " next to %s"]) % phrase(objs[2], r)
    return s
for i in range(n_img):
    r = random.Random(seed * 1000003 + i)
    sp = split_of(i); part = 't10k' if sp == 'test' else 'train'
    img = [0.0] * (canvas * canvas * 3)
    bg = r.uniform(0.0, 0.15)
    for p in range(canvas * canvas):
        v = bg + r.uniform(-0.03, 0.03)
        img[3 * p] = img[3 * p + 1] = img[3 * p + 2] = min(1.0, max(0.0, v))
    n_obj = r.choice([1, 2, 2, 2, 3])
    cols = r.sample(range(len(COLOURS)), n_obj)
    objs = []
    rel = r.randrange(4)
    S = canvas
    if n_obj == 1:
        s = r.randint(S * 5 // 8, S * 7 // 8)
        places = [(r.randint(0, S - s), r.randint(0, S - s), s)]
    else:
        s = r.randint(S * 3 // 8, S // 2)
        lo, hi = 0, S // 2 - s if S // 2 - s > 0 else 0
        a = r.randint(0, max(0, S // 2 - s)); b = r.randint(S // 2, S - s)
        c = r.randint(0, S - s); d = r.randint(0, S - s)
        if rel == 0: places = [(a, c, s), (b, d, s)]
        elif rel == 1: places = [(b, c, s), (a, d, s)]
        elif rel == 2: places = [(c, a, s), (d, b, s)]
        else: places = [(c, b, s), (d, a, s)]
        if n_obj == 3:
            s3 = S // 4
            places.append((r.choice([0, S - s3]), r.choice([0, S - s3]), s3))
    for k in range(n_obj):
        cls = r.randrange(10)
        item = r.choice(by_class[part][cls])
        x0, y0, s = places[k]
        paste(img, part, item, COLOURS[cols[k]][1], x0, y0, s, r)
        objs.append((cls, cols[k], item, 1 if s >= S // 2 else 0))
    for gy in range(G):
        for gx in range(G):
            for yy in range(8):
                for xx in range(8):
                    o = ((gy * 8 + yy) * canvas + gx * 8 + xx) * 3
                    regions.extend((2.0 * img[o] - 1.0, 2.0 * img[o + 1] - 1.0, 2.0 * img[o + 2] - 1.0))
            boxes.extend((gx * 8 / canvas, gy * 8 / canvas, (gx + 1) * 8 / canvas, (gy + 1) * 8 / canvas))
    caps = []
    for j in range(K):
        for _ in range(20):
            c = caption(objs, rel, r)
            if c not in caps: break
        caps.append(c)
    g = 'test' if sp == 'test' else 'train'
    for j, (c, spk) in enumerate(zip(caps, pick_speakers(g, K))):
        meta.append((sp, i, spk, c))
# ood: word lists and other carrier sentences by held-out voices
WORDS = ("apple banana river mountain window garden teacher kitchen bottle pencil window mirror ladder rabbit "
         "tiger candle basket finger summer winter button carpet doctor engine forest guitar hammer island "
         "jacket kettle lemon market needle orange pillow rocket saddle tunnel valley wallet yellow zebra "
         "thunder shadow silver bridge castle dinner flower honey letter monkey napkin oyster puzzle rubber "
         "sugar table violin whistle cabbage dolphin feather giant helmet insect jungle lizard magnet nickel").split()
CARRIERS = ["please say the word {w} again", "the next word is {w}", "now repeat {w} slowly", "i will write {w} on the board",
            "did you hear {w} or {v}", "she said {w} and then {v}"]
for k in range(n_ood):
    r = random.Random(seed * 7919 + 100000 + k)
    if r.random() < 0.5: t = " ".join(r.sample(WORDS, r.randint(4, 7)))
    else: t = r.choice(CARRIERS).format(w=r.choice(WORDS), v=r.choice(WORDS))
    meta.append(('ood', -1, pick_speakers('ood', 1)[0], t))
cnt = {}
def npy(path, arr, shape):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    hdr += ' ' * ((64 - (10 + len(hdr) + 1) % 64) % 64) + '\n'
    if sys.byteorder == 'big': arr.byteswap()
    with open(path + '.tmp', 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode('latin1')); arr.tofile(f)
    os.replace(path + '.tmp', path)
npy(os.path.join(out, 'images.npy'), regions, (n_img, G * G, 192))
npy(os.path.join(out, 'boxes.npy'), boxes, (n_img, G * G, 4))
with open(os.path.join(out, 'image_split.tsv'), 'w') as f:
    f.write('image\tsplit\n')
    for i in range(n_img): f.write('%d\t%s\n' % (i, split_of(i)))
with open(os.path.join(out, 'jobs.tsv.tmp'), 'w') as fj, open(os.path.join(out, 'meta.tsv.tmp'), 'w') as fm_:
    for sp, i, spk, text in meta:
        uid = "%s_%05d" % (sp, cnt.get(sp, 0)); cnt[sp] = cnt.get(sp, 0) + 1
        name, voice, pitch, rate, rng_ = spk
        r = random.Random(uid + str(seed))
        fj.write("%s\t%s\t%d\t%d\t%d\t%s\n" % (uid, voice, max(0, min(99, pitch + r.randint(-6, 6))),
                                              int(rate * r.uniform(0.92, 1.08)), rng_, text))
        fm_.write("%s\t%s\t%d\t%s\t%s\n" % (uid, sp, i, name, text))
os.replace(os.path.join(out, 'jobs.tsv.tmp'), os.path.join(out, 'jobs.tsv'))
os.replace(os.path.join(out, 'meta.tsv.tmp'), os.path.join(out, 'meta.tsv'))
print("planned %d images, %d utterances, voices: %d train / %d test / %d ood" % (
    n_img, len(meta), len(speakers['train']), len(speakers['test']), len(speakers['ood'])), file=sys.stderr)
PY
}

tts_finish() {
    python3 - "$@" <<'PY'
import os, sys
out, t_plan, t_synth, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def die(m): sys.stderr.write("data_prep.sh: error: %s\n" % m); sys.exit(1)
rows = [l.rstrip('\n').split('\t') for l in open(os.path.join(out, 'meta.tsv'))]
missing = [r[0] for r in rows if not os.path.exists(os.path.join(out, 'align', r[0] + '.words'))]
if missing: die("%d utterances were not synthesised (e.g. %s); rerun to resume" % (len(missing), missing[0]))
secs, spk, nph = {}, {}, {}
man = {s: [] for s in ('train', 'val', 'test', 'ood')}
items = {'val': [], 'test': [], 'ood': []}
for uid, sp, img, speaker, text in rows:
    d = (os.path.getsize(os.path.join(out, 'wav', uid + '.wav')) - 44) / 32000.0
    secs[sp] = secs.get(sp, 0.0) + d
    spk.setdefault(sp, set()).add(speaker)
    ph = [l.split() for l in open(os.path.join(out, 'align', uid + '.phones'))]
    nph[sp] = nph.get(sp, 0) + len(ph)
    man[sp].append((uid, 'wav/%s.wav' % uid, img, speaker, text, 'align/%s.phones' % uid))
    if sp in items:
        for k in range(1, len(ph) - 1):
            a, b, c = ph[k - 1], ph[k], ph[k + 1]
            if a[1] == b[0] and b[1] == c[0] and 'SPN' not in (a[2], b[2], c[2]) and float(b[0]) < float(b[1]):
                items[sp].append((uid, b[0], b[1], b[2], a[2], c[2], speaker))
for sp, lst in man.items():
    if not lst: continue
    with open(os.path.join(out, sp + '.tsv.tmp'), 'w') as f:
        if sp == 'ood':
            f.write('id\twav\tspeaker\ttext\talign\n')
            for u, w, i, s, t, a in lst: f.write('\t'.join((u, w, s, t, a)) + '\n')
        else:
            f.write('id\twav\timage\tspeaker\ttext\talign\n')
            for r in lst: f.write('\t'.join(r) + '\n')
    os.replace(os.path.join(out, sp + '.tsv.tmp'), os.path.join(out, sp + '.tsv'))
for sp, lst in items.items():
    if not lst: continue
    with open(os.path.join(out, sp + '.item.tmp'), 'w') as f:
        f.write('#file onset offset #phone prev-phone next-phone speaker\n')
        for it in lst: f.write(' '.join(it) + '\n')
    os.replace(os.path.join(out, sp + '.item.tmp'), os.path.join(out, sp + '.item'))
total = sum(secs.values())
n_img = sum(1 for _ in open(os.path.join(out, 'image_split.tsv'))) - 1
with open(os.path.join(out, 'stats.txt'), 'w') as f:
    f.write("# ssl_vgs tts corpus: espeak-ng voices reading captions of Fashion-MNIST scenes\n")
    f.write("images: %d\n" % n_img)
    f.write("split  utterances  hours  speakers  phones\n")
    for sp in ('train', 'val', 'test', 'ood'):
        f.write("%-5s  %10d  %5.3f  %8d  %d\n" % (sp, len(man[sp]), secs.get(sp, 0) / 3600, len(spk.get(sp, ())), nph.get(sp, 0)))
    f.write("total  %10d  %5.3f\n" % (len(rows), total / 3600))
    f.write("abx items: val %d, test %d, ood %d\n" % (len(items['val']), len(items['test']), len(items['ood'])))
    rate = total / 3600 / (t_synth / 60.0) if t_synth > 0 else float('inf')
    f.write("generation: plan %d s, synthesis %d s with %d jobs (%.3f hours of speech per minute)\n" % (t_plan, t_synth, jobs, rate))
os.remove(os.path.join(out, 'jobs.tsv')); os.remove(os.path.join(out, 'meta.tsv'))
PY
}

# ================================================================ main
[ $# -ge 1 ] || { usage >&2; exit 2; }
cmd="$1"; shift
SUB="$cmd"
case "$cmd" in
    -h|--help|help) usage ;;
    builtin) cmd_builtin "$@" ;;
    tts) cmd_tts "$@" ;;
    spokencoco) cmd_spokencoco "$@" ;;
    librispeech) cmd_librispeech "$@" ;;
    zerospeech) cmd_zerospeech "$@" ;;
    *) die "unknown subcommand '$cmd' (see $PROG --help)" ;;
esac
