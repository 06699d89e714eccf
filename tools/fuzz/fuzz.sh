#!/bin/sh
# Build and run the libFuzzer harnesses of the parsers in ssl_vgs.h (make fuzz).
#   tools/fuzz/fuzz.sh [SECONDS] [TARGET...]     (defaults: 30 s each; wav npy manifest item safetensors config)
# Needs clang with libFuzzer (Debian: libclang-rt-14-dev or the llvm toolchain's compiler-rt).
# Seeds are generated into a scratch folder on every run (nothing binary is committed); the grown
# corpora and any crash reproducers stay there: $FUZZ_DIR (default /tmp/ssl_vgs_fuzz).
# Exit status: 0 if every target ran its time without a finding, 1 otherwise.
set -eu
SECONDS_EACH=${1:-30}
[ $# -gt 0 ] && shift
TARGETS=${*:-"wav npy manifest item safetensors config"}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${FUZZ_DIR:-/tmp/ssl_vgs_fuzz}
CC=${CC_FUZZ:-clang}
FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

mkdir -p "$OUT/seeds/wav" "$OUT/seeds/npy" "$OUT/seeds/manifest" "$OUT/seeds/item" "$OUT/seeds/safetensors" "$OUT/seeds/config"
$CC -std=c99 -O1 -o "$OUT/fuzz_seeds" "$HERE/fuzz_seeds.c" -lm
"$OUT/fuzz_seeds" "$OUT/seeds"
# config lines, a data spec, numbers
printf 'D = 64\nheads = 4\nq_dim = 64\nmask_prob = 0.65\nvgs_width = 32,32,48,64,64\nconv_dim = 64,64,64,64,64,64,64\n' > "$OUT/seeds/config/lines"
printf 'builtin:images=10,captions=2,seed=3' > "$OUT/seeds/config/spec"
printf '1e-4' > "$OUT/seeds/config/number"
printf 'n_conv = 7\ntau_min = 0.5\ntau_max = 2\nlogit_temp = 0.1\nn_negatives = 20\n' > "$OUT/seeds/config/more"

# Dictionaries: the tokens the parsers branch on.
printf '"RIFF"\n"WAVE"\n"fmt "\n"data"\n"LIST"\n"fact"\n"\\xfe\\xff"\n"\\x01\\x00"\n"\\x03\\x00"\n"\\x10\\x00\\x80\\x00\\x00\\xaa\\x00\\x38\\x9b\\x71"\n' > "$OUT/wav.dict"
printf '"\\x93NUMPY"\n"descr"\n"fortran_order"\n"shape"\n"True"\n"False"\n"<f4"\n">f8"\n"<f8"\n"(1,)"\n"L,"\n"{"\n"}"\n' > "$OUT/npy.dict"
printf '"id"\n"wav"\n"image"\n"speaker"\n"text"\n"align"\n"\\x09"\n"\\x0d\\x0a"\n"-1"\n"\\xef\\xbb\\xbf"\n"/"\n' > "$OUT/manifest.dict"
printf '" "\n"\\x09"\n"\\x0a"\n"0.5"\n"1e-3"\n"nan"\n"inf"\n"-"\n"."\n"e+"\n' > "$OUT/item.dict"
printf '"dtype"\n"shape"\n"data_offsets"\n"__metadata__"\n"F32"\n"F16"\n"BF16"\n"F64"\n"I64"\n"\\x22"\n"{"\n"}"\n"["\n"]"\n":"\n","\n"\\\\u"\n"null"\n"true"\n"wav2vec2."\n"feature_extractor.conv_layers.1.layer_norm.weight"\n"encoder.layers.0.attention.q_proj.weight"\n"encoder.pos_conv_embed.conv.weight_v"\n"project_hid.weight"\n' > "$OUT/safetensors.dict"
printf '" = "\n"\\x0a"\n","\n"D"\n"heads"\n"q_dim"\n"q_groups"\n"mask_prob"\n"mask_length"\n"tau_min"\n"tau_max"\n"vgs_width"\n"conv_dim"\n"n_conv"\n"nan"\n"inf"\n"1e50"\n"-"\n"builtin:"\n"images="\n"seed="\n' > "$OUT/config.dict"

status=0
for t in $TARGETS; do
    echo "== fuzz_$t: building"
    $CC $FLAGS -o "$OUT/fuzz_$t" "$HERE/fuzz_$t.c" -lm
    mkdir -p "$OUT/corpus_$t" "$OUT/crash_$t"
    echo "== fuzz_$t: running ${SECONDS_EACH}s"
    if "$OUT/fuzz_$t" "$OUT/corpus_$t" "$OUT/seeds/$t" -dict="$OUT/$t.dict" -max_total_time="$SECONDS_EACH" \
        -max_len=8192 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$OUT/crash_$t/" \
        > "$OUT/fuzz_$t.log" 2>&1; then
        grep -E "stat::number_of_executed_units|cov:" "$OUT/fuzz_$t.log" | tail -2
        echo "== fuzz_$t: OK"
    else
        status=1
        tail -40 "$OUT/fuzz_$t.log"
        echo "== fuzz_$t: FINDING (reproducer in $OUT/crash_$t/, log $OUT/fuzz_$t.log)"
    fi
done
exit $status
