#!/usr/bin/python3
"""timing_corpus.py -- stand-ins for timing the `base` config without downloads.

Writes (1) a corpus folder in the layout ./train reads with SpokenCOCO's shapes: 36 regions of
2048 values per image (the FaST-VGS detector features), 5 spoken captions per image with
SpokenCOCO's mean caption length (742 h / 605k captions = 4.4 s; log-normal, 1.5..12 s), 16-bit
WAV; and (2) with --model, a Wav2Vec2ForPreTraining safetensors file with the names, shapes and
config.json of facebook/wav2vec2-base, random weights (torchaudio's wav2vec2_base() plus a random
quantizer and projections). Step time and memory do not depend on the values, so
`./train --init-from MODEL --data CORPUS --config base` times what the same command does with the
real model and corpus. Nothing here measures accuracy.

Usage: /usr/bin/python3 tools/timing_corpus.py OUT [--images 100] [--model DIR]
"""
import argparse
import json
import os
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--images', type=int, default=100)
    ap.add_argument('--model', help='also write a base-shaped model.safetensors + config.json here')
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    os.makedirs(os.path.join(a.out, 'wav'), exist_ok=True)
    n_img = a.images
    splits = {'train': range(0, n_img - 20), 'val': range(n_img - 20, n_img - 10), 'test': range(n_img - 10, n_img)}
    np.save(os.path.join(a.out, 'images.npy'), rng.normal(0, 1, (n_img, 36, 2048)).astype(np.float32))
    boxes = np.sort(rng.uniform(0, 1, (n_img, 36, 4)).astype(np.float32).reshape(n_img, 36, 2, 2), axis=2).transpose(0, 1, 3, 2)
    np.save(os.path.join(a.out, 'boxes.npy'), np.ascontiguousarray(boxes.reshape(n_img, 36, 4)))
    total = 0.0
    for split, imgs in splits.items():
        with open(os.path.join(a.out, split + '.tsv'), 'w') as man:
            man.write('id\twav\timage\tspeaker\ttext\talign\n')
            for i in imgs:
                for k in range(5):
                    uid = '%s_%05d_%d' % (split, i, k)
                    sec = float(np.clip(rng.lognormal(np.log(4.4) - 0.08, 0.4), 1.5, 12.0))
                    n = int(sec * 16000)
                    t = np.arange(n) / 16000.0
                    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
                    ph = 2 * np.pi * np.cumsum(f0) / 16000.0
                    x = sum(np.sin(h * ph) / h for h in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
                    x += 0.05 * rng.normal(0, 1, n)
                    pcm = np.round(0.3 * x / np.abs(x).max() * 32767).astype('<i2')
                    with wave.open(os.path.join(a.out, 'wav', uid + '.wav'), 'wb') as w:
                        w.setnchannels(1)
                        w.setsampwidth(2)
                        w.setframerate(16000)
                        w.writeframes(pcm.tobytes())
                    man.write('%s\twav/%s.wav\t%d\tspk%d\t\t\n' % (uid, uid, i, k))
                    total += sec
    with open(os.path.join(a.out, '.complete'), 'w') as f:
        f.write('complete\n')
    print('%s: %d images (36 x 2048), %d captions, %.1f h of audio' % (a.out, n_img, 5 * n_img, total / 3600))
    if a.model:
        import torch
        from torchaudio.models import wav2vec2_base
        from check_torchaudio import random_head, ta_to_hf, write_safetensors
        torch.manual_seed(0)
        m = wav2vec2_base()
        tensors = ta_to_hf(m.state_dict(), 'wav2vec2.') + random_head(512, 768, 2, 320, 256, 256, 2)
        os.makedirs(a.model, exist_ok=True)
        write_safetensors(os.path.join(a.model, 'model.safetensors'), tensors, {'format': 'pt'})
        cfg = dict(architectures=['Wav2Vec2ForPreTraining'], model_type='wav2vec2', conv_dim=[512] * 7,
                   conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_bias=False, feat_extract_norm='group',
                   feat_extract_activation='gelu', hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                   intermediate_size=3072, hidden_act='gelu', layer_norm_eps=1e-5, do_stable_layer_norm=False,
                   num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, num_codevector_groups=2,
                   num_codevectors_per_group=320, codevector_dim=256, proj_codevector_dim=256)
        with open(os.path.join(a.model, 'config.json'), 'w') as f:
            json.dump(cfg, f, indent=2)
        print('%s/model.safetensors: facebook/wav2vec2-base names and shapes, random values' % a.model)


if __name__ == '__main__':
    main()
