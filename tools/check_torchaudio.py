#!/usr/bin/python3
"""check_torchaudio.py -- ssl_vgs's wav2vec 2.0 against torchaudio's, both ways (make check-torch).

Needs Debian's python3-torch and python3-torchaudio (0.13) and numpy; downloads nothing. Runs the
built ./train and ./eval of this checkout.

1. torchaudio -> ssl_vgs: torchaudio's wav2vec2_base() and a small custom model (layer-norm CNN
   with conv bias and custom strides, pre-LN transformer), in eval mode, with EVERY parameter
   drawn at random -- weight norm's g (else g = ||v|| and a loader that ignores g passes by
   accident), every norm's scale and bias, every bias. Its state dict is renamed to Hugging Face
   names and written as safetensors by the small writer below (base: Wav2Vec2ForPreTraining
   names under "wav2vec2." and no config.json, so the config is inferred from the tensors; small:
   Wav2Vec2Model names, the newer weight-norm spelling parametrizations.weight.original0/1 and a
   config.json). A random pretraining head (quantizer, project_q, project_hid) is added.
   `./eval features --layers all` extracts every layer of 3 unpadded utterances of different
   lengths; torchaudio extracts them too; the largest relative error per layer,
   max|a - b| / max|b| over the 3 utterances, must be <= 1e-4.
2. ssl_vgs -> torchaudio: models trained here for a few steps (`base` and `tiny` without the CLS
   token, and a pre-LN layer-norm variant), exported with `./train --export-hf`, loaded into
   torchaudio's wav2vec2_model() built from the exported config.json (load_state_dict strict),
   compared with `./eval features` of the checkpoint itself, same bound.
3. The pretraining head, which torchaudio does not have: the quantizer's codes (exact), project_q
   of the chosen codevectors and project_hid of the last layer, computed here the way Hugging
   Face's Wav2Vec2ForPreTraining does in eval mode, against `./eval features --layers
   codes,q,proj`; and a round trip of a Python-written file through `./train --export-hf
   in.safetensors out.safetensors`: every tensor must come back with the same bytes.

Layer k of ssl_vgs (and `./eval features`) is Hugging Face's hidden_states[k]: k = 0 is the
transformer input, k >= 1 the output of layer k. torchaudio's extract_features returns layers
1..L; layer 0 is taken from its Transformer._preprocess. For pre-LN models Hugging Face applies
the encoder's final layer norm to the last layer (hidden_states[L]) and torchaudio does not:
that norm is applied to torchaudio's last output here.

Both sides see the same samples: each utterance is written as a 16-bit WAV, read back, and
normalised to zero mean and unit variance with eps 1e-5 (what ./eval features does) before
torchaudio sees it. ssl_vgs models here have use_cls = 0: the study's models prepend a learned
CLS token (FaST-VGS+), which changes every transformer output and has no place in torchaudio.

Usage: /usr/bin/python3 tools/check_torchaudio.py [--quick] [--keep DIR]
Exit status 0 when every check passes.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import wave

import numpy as np

TOL = 1e-4
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = []          # (check, worst error or None, ok)


# ------------------------------------------------------------------ safetensors in pure Python
def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, float32 numpy array); the reference layout (u64 LE header length,
    JSON, data in order, header padded with spaces to a multiple of 8)."""
    header, off = {}, 0
    if metadata:
        header['__metadata__'] = metadata
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype='<f4')
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for _, a in tensors:
            f.write(np.ascontiguousarray(a, dtype='<f4').tobytes())


def read_safetensors(path):
    """-> (dict name -> (dtype, shape, raw bytes), metadata)"""
    with open(path, 'rb') as f:
        buf = f.read()
    n = struct.unpack('<Q', buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    meta = header.pop('__metadata__', {})
    data = buf[8 + n:]
    out = {}
    for name, e in header.items():
        b, en = e['data_offsets']
        out[name] = (e['dtype'], tuple(e['shape']), data[b:en])
    return out, meta


def st_array(entry):
    dtype, shape, raw = entry
    assert dtype == 'F32', dtype
    return np.frombuffer(raw, dtype='<f4').reshape(shape)


# ------------------------------------------------------------------ torchaudio <-> Hugging Face names
def ta_to_hf(sd, prefix='', new_wn=False):
    """torchaudio Wav2Vec2Model state dict -> [(HF name, array)]"""
    out = []
    for k, v in sd.items():
        a = v.detach().cpu().numpy().astype(np.float32)
        if k.startswith('encoder.feature_projection.'):
            k = k[len('encoder.'):]
        elif k.startswith('encoder.transformer.'):
            k = 'encoder.' + k[len('encoder.transformer.'):]
        elif not k.startswith('feature_extractor.'):
            raise ValueError('unexpected torchaudio tensor ' + k)
        if new_wn:
            k = k.replace('pos_conv_embed.conv.weight_g', 'pos_conv_embed.conv.parametrizations.weight.original0')
            k = k.replace('pos_conv_embed.conv.weight_v', 'pos_conv_embed.conv.parametrizations.weight.original1')
        out.append((prefix + k, a))
    return out


def hf_to_ta(tensors):
    """{HF name: array} (ForPreTraining or Model names) -> torchaudio state dict, and the rest"""
    import torch
    sd, rest = {}, {}
    for k, a in tensors.items():
        k0 = k
        if k.startswith('wav2vec2.'):
            k = k[len('wav2vec2.'):]
        if k.startswith('feature_extractor.'):
            pass
        elif k.startswith('feature_projection.'):
            k = 'encoder.' + k
        elif k.startswith('encoder.'):
            k = 'encoder.transformer.' + k[len('encoder.'):]
            k = k.replace('parametrizations.weight.original0', 'weight_g').replace('parametrizations.weight.original1', 'weight_v')
        else:
            rest[k0] = a
            continue
        sd[k] = torch.from_numpy(np.array(a))
    return sd, rest


def ta_config_from_hf(cfg):
    return dict(
        extractor_mode=cfg['feat_extract_norm'] + '_norm',
        extractor_conv_layer_config=list(zip(cfg['conv_dim'], cfg['conv_kernel'], cfg['conv_stride'])),
        extractor_conv_bias=cfg['conv_bias'],
        encoder_embed_dim=cfg['hidden_size'],
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=cfg['num_conv_pos_embeddings'],
        encoder_pos_conv_groups=cfg['num_conv_pos_embedding_groups'],
        encoder_num_layers=cfg['num_hidden_layers'],
        encoder_num_heads=cfg['num_attention_heads'],
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=cfg['intermediate_size'],
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=cfg['do_stable_layer_norm'],
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )


# ------------------------------------------------------------------ models with every parameter random
def randomise(model, seed):
    """Draw every parameter anew: weights N(0, 1/fan_in) (the positional conv's v as fairseq,
    N(0, sqrt(4 / (K D)))), weight norm's g = ||v|| * U(0.5, 1.5) per tap, norm scales U(0.5, 1.5),
    every bias and norm shift N(0, 0.1). Returns the names of the parameters drawn."""
    import torch
    g = torch.Generator().manual_seed(seed)
    drawn = []
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, p in params.items():
            if name.endswith('weight_g'):
                continue
            if name.endswith('weight_v'):
                D, _, K = p.shape
                p.copy_(torch.randn(p.shape, generator=g) * (4.0 / (K * D)) ** 0.5)
            elif name.endswith('bias'):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif p.dim() == 1:            # LayerNorm / GroupNorm scale
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            drawn.append(name)
        for name, p in params.items():
            if name.endswith('weight_g'):
                v = params[name[:-1] + 'v']
                norm = v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
                p.copy_(norm * (0.5 + torch.rand(p.shape, generator=g)))
                drawn.append(name)
    missing = [n for n in params if n not in drawn]
    assert not missing, missing
    return drawn


def random_head(C, D, G, V, d, F, seed):
    rng = np.random.default_rng(seed)
    return [('quantizer.codevectors', rng.uniform(0, 1, (1, G * V, d // G)).astype(np.float32)),
            ('quantizer.weight_proj.weight', rng.normal(0, 1, (G * V, C)).astype(np.float32)),
            ('quantizer.weight_proj.bias', rng.normal(0, 0.1, (G * V,)).astype(np.float32)),
            ('project_q.weight', (rng.normal(0, 1, (F, d)) / d ** 0.5).astype(np.float32)),
            ('project_q.bias', rng.normal(0, 0.1, (F,)).astype(np.float32)),
            ('project_hid.weight', (rng.normal(0, 1, (F, D)) / D ** 0.5).astype(np.float32)),
            ('project_hid.bias', rng.normal(0, 0.1, (F,)).astype(np.float32))]


# ------------------------------------------------------------------ utterances
def make_utterances(folder, seconds, seed):
    """Speech-like test signals (voiced harmonics with a moving pitch, noise bursts, silence),
    16-bit WAV; returns [(path, float32 samples as read back)]"""
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(seconds):
        n = int(s * 16000)
        t = np.arange(n) / 16000.0
        f0 = 110 + 60 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) + rng.uniform(0, 40)
        ph = 2 * np.pi * np.cumsum(f0) / 16000.0
        x = sum(np.sin(k * ph + rng.uniform(0, 6)) / k for k in range(1, 25))
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
        x += 0.3 * rng.normal(0, 1, n) * (np.sin(2 * np.pi * 1.3 * t) > 0.6)
        x[: n // 20] *= 0.01
        x = 0.4 * x / np.abs(x).max()
        pcm = np.round(x * 32767).astype('<i2')
        p = os.path.join(folder, 'utt%d.wav' % i)
        with wave.open(p, 'wb') as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm.tobytes())
        with wave.open(p, 'rb') as w:
            y = np.frombuffer(w.readframes(w.getnframes()), dtype='<i2').astype(np.float32) / 32768.0
        out.append((p, y))
    return out


def normalise(x):
    """as sv_normalize_wave: double precision, biased variance, eps 1e-5, then float32"""
    x = x.astype(np.float64)
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-5)).astype(np.float32)


# ------------------------------------------------------------------ running ssl_vgs
def run(cmd, **kw):
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        sys.stdout.write(r.stdout)
        raise SystemExit('FAILED: ' + ' '.join(cmd))
    return r.stdout


def ssl_features(model_path, utts, out, layers='all'):
    run(['./eval', 'features', '--model', model_path, '--layers', layers, '--out', out] + [p for p, _ in utts])
    feats = {}
    for d in sorted(os.listdir(out)):
        feats[d] = [np.load(os.path.join(out, d, os.path.basename(p)[:-4] + '.npy')) for p, _ in utts]
    return feats


# ------------------------------------------------------------------ torchaudio's side
def ta_features(model, utts, pre_ln):
    """{'cnn': [...], 'L0': [...], 'L1'..: [...]} per utterance, Hugging Face's layer convention"""
    import torch
    out = {}
    with torch.no_grad():
        for _, y in utts:
            x = torch.from_numpy(normalise(y))[None]
            cnn, _ = model.feature_extractor(x, None)
            h = model.encoder.feature_projection(cnn)
            l0 = model.encoder.transformer._preprocess(h)
            layers, _ = model.extract_features(x)
            if pre_ln:     # Hugging Face's hidden_states[L] has the final layer norm
                layers[-1] = model.encoder.transformer.layer_norm(layers[-1])
            for k, a in [('cnn', cnn), ('L0', l0)] + [('L%d' % (i + 1), a) for i, a in enumerate(layers)]:
                out.setdefault(k, []).append(a[0].numpy())
    return out


def hf_head(tensors, cnn, last, ln_w, ln_b, G):
    """Wav2Vec2ForPreTraining's quantizer (eval: argmax per group, no noise), project_q and
    project_hid, written the way transformers computes them. cnn [T,C], last [T,D]."""
    import torch
    t = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    x = torch.nn.functional.layer_norm(torch.from_numpy(cnn), (cnn.shape[1],), ln_w, ln_b, 1e-5)
    logits = torch.nn.functional.linear(x, t['quantizer.weight_proj.weight'], t['quantizer.weight_proj.bias'])
    T = logits.shape[0]
    logits = logits.view(T * G, -1)
    idx = logits.argmax(dim=-1)
    probs = logits.new_zeros(logits.shape).scatter_(-1, idx.view(-1, 1), 1.0).view(T, G, -1)
    cv = t['quantizer.codevectors']                                   # [1, G*V, d/G]
    per = probs.view(T, -1, 1) * cv
    q = per.view(T, G, probs.shape[-1], -1).sum(-2).view(T, -1)
    q = torch.nn.functional.linear(q, t['project_q.weight'], t['project_q.bias'])
    p = torch.nn.functional.linear(torch.from_numpy(last), t['project_hid.weight'], t['project_hid.bias'])
    return idx.view(T, G).numpy(), q.numpy(), p.numpy(), logits.view(T, G, -1).numpy()


# ------------------------------------------------------------------ comparisons
def rel_err(a_list, b_list):
    num, den = 0.0, 0.0
    for a, b in zip(a_list, b_list):
        if a.shape != b.shape:
            return float('inf')
        num = max(num, float(np.abs(a.astype(np.float64) - b).max()))
        den = max(den, float(np.abs(b).max()))
    return num / den if den > 0 else num


def compare(name, ours, ref, keys):
    worst, lines = 0.0, []
    for k in keys:
        e = rel_err(ours[k], ref[k])
        worst = max(worst, e)
        lines.append('%s %.1e' % (k, e))
    ok = worst <= TOL
    RESULTS.append((name, worst, ok))
    print('  %-44s %s  worst %.2e  %s' % (name, 'ok  ' if ok else 'FAIL', worst, ' '.join(lines)))
    return ok


def layer_keys(n_layers):
    return ['cnn'] + ['L%d' % i for i in range(n_layers + 1)]


def check_head(name, tensors, feats, ssl_head, ln_w, ln_b, G):
    worst_q = worst_p = 0.0
    bad_codes = ties = 0
    for u in range(len(feats['cnn'])):
        last = feats['L%d' % (len([k for k in feats if k.startswith('L')]) - 1)][u]
        codes, q, p, logits = hf_head(tensors, feats['cnn'][u], last, ln_w, ln_b, G)
        ours_codes = ssl_head['codes'][u].astype(np.int64)
        for t in range(codes.shape[0]):
            for g in range(G):
                if codes[t, g] != ours_codes[t, g]:
                    l = logits[t, g]
                    gap = abs(l[codes[t, g]] - l[ours_codes[t, g]])
                    if gap <= 1e-5 * max(1.0, np.abs(l).max()):
                        ties += 1          # a near-tie: float rounding may pick either
                    else:
                        bad_codes += 1
        worst_q = max(worst_q, rel_err([ssl_head['q'][u]], [q]) if not ties else worst_q)
        worst_p = max(worst_p, rel_err([ssl_head['proj'][u]], [p]))
    ok = bad_codes == 0 and worst_q <= TOL and worst_p <= TOL
    RESULTS.append((name, max(worst_q, worst_p), ok))
    print('  %-44s %s  codes: %d differ (%d near-ties), q %.1e, proj %.1e' % (name, 'ok  ' if ok else 'FAIL', bad_codes, ties,
                                                                           worst_q, worst_p))


# ------------------------------------------------------------------ the checks
def direction_torchaudio_to_ssl(tmp, utts, quick):
    import torch
    from torchaudio.models import wav2vec2_base, wav2vec2_model
    cases = []
    if not quick:
        cases.append(('base', wav2vec2_base(), dict(prefix='wav2vec2.', new_wn=False, config=None, G=2, V=320, d=256, F=256)))
    small_cfg = dict(extractor_mode='layer_norm',
                     extractor_conv_layer_config=[(32, 10, 5), (48, 5, 3), (64, 3, 2), (64, 2, 2)],
                     extractor_conv_bias=True, encoder_embed_dim=96, encoder_projection_dropout=0.0,
                     encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=4,
                     encoder_attention_dropout=0.0, encoder_ff_interm_features=160, encoder_ff_interm_dropout=0.0,
                     encoder_dropout=0.0, encoder_layer_norm_first=True, encoder_layer_drop=0.0, aux_num_out=None)
    hf_small = dict(model_type='wav2vec2', architectures=['Wav2Vec2Model'], conv_dim=[32, 48, 64, 64], conv_kernel=[10, 5, 3, 2],
                    conv_stride=[5, 3, 2, 2], conv_bias=True, feat_extract_norm='layer', feat_extract_activation='gelu',
                    hidden_size=96, num_hidden_layers=2, num_attention_heads=4, intermediate_size=160, hidden_act='gelu',
                    layer_norm_eps=1e-5, do_stable_layer_norm=True, num_conv_pos_embeddings=16,
                    num_conv_pos_embedding_groups=4, num_codevector_groups=2, num_codevectors_per_group=8,
                    codevector_dim=32, proj_codevector_dim=24)
    cases.append(('small', wav2vec2_model(**small_cfg), dict(prefix='', new_wn=True, config=hf_small, G=2, V=8, d=32, F=24)))
    for name, model, o in cases:
        model.eval()
        randomise(model, seed=11)
        folder = os.path.join(tmp, 'ta_' + name)
        os.makedirs(folder)
        tensors = ta_to_hf(model.state_dict(), o['prefix'], o['new_wn'])
        C = model.encoder.feature_projection.layer_norm.normalized_shape[0]
        D = model.encoder.feature_projection.projection.out_features
        head = random_head(C, D, o['G'], o['V'], o['d'], o['F'], seed=12)
        path = os.path.join(folder, 'model.safetensors')
        write_safetensors(path, tensors + head, {'format': 'pt'})
        if o['config']:
            with open(os.path.join(folder, 'config.json'), 'w') as f:
                json.dump(o['config'], f, indent=2)
        n_layers = len(model.encoder.transformer.layers)
        pre_ln = not model.encoder.transformer.layer_norm_first   # torchaudio stores the negation
        ours = ssl_features(path, utts, os.path.join(folder, 'feat'), 'all')
        ref = ta_features(model, utts, pre_ln)
        compare('torchaudio %s -> ssl_vgs, every layer' % name, ours, ref, layer_keys(n_layers))
        head_out = ssl_features(path, utts, os.path.join(folder, 'head'), 'codes,q,proj')
        hd = dict(head)
        ln = model.encoder.feature_projection.layer_norm
        check_head('HF pretraining head (%s): codes, q, proj' % name, hd, ours, head_out, ln.weight.detach(), ln.bias.detach(), o['G'])
        # round trip: ssl_vgs reads the file and writes it again; every tensor keeps its bytes
        back = os.path.join(folder, 'back', 'model.safetensors')
        run(['./train', '--export-hf', path, back])
        a, _ = read_safetensors(path)
        b, meta = read_safetensors(back)
        pfx = o['prefix']
        diffs = []
        for k, e in a.items():
            kb = k if k.startswith(('quantizer.', 'project_')) or pfx else 'wav2vec2.' + k
            kb = kb.replace('parametrizations.weight.original0', 'weight_g').replace('parametrizations.weight.original1', 'weight_v')
            if kb not in b or b[kb][1] != e[1] or b[kb][2] != e[2]:
                diffs.append(k)
        extra = [k for k in b if not any(k == (kk if kk.startswith(('quantizer.', 'project_')) or pfx else 'wav2vec2.' + kk)
                                         .replace('parametrizations.weight.original0', 'weight_g')
                                         .replace('parametrizations.weight.original1', 'weight_v') for kk in a)]
        # torchaudio has no mask embedding: the export adds the initial one, nothing else
        extra = [k for k in extra if not k.endswith('masked_spec_embed')]
        ok = not diffs and not extra and meta.get('format') == 'pt'
        RESULTS.append(('round trip %s' % name, None, ok))
        print('  %-44s %s  %d tensors, %d differ%s, %d extra%s' % ('round trip %s (load, export, bytes)' % name, 'ok  ' if ok else 'FAIL',
                                                                    len(a), len(diffs), (' ' + str(diffs[:3])) if diffs else '',
                                                                    len(extra), (' ' + str(extra[:3])) if extra else ''))


def direction_ssl_to_torchaudio(tmp, utts, quick):
    import torch
    from torchaudio.models import wav2vec2_model
    data = 'builtin:images=24,val_images=4,test_images=4,ood_utts=4,captions=1'
    cases = [('tiny', ['--config', 'tiny', '--set', 'use_cls=0', '--steps', '4', '--batch', '4', '--crop', '2', '--lr', '1e-3']),
             ('tiny pre-LN layer-norm CNN', ['--config', 'tiny', '--set', 'use_cls=0', '--set', 'extractor_mode=1', '--set', 'conv_bias=1',
                                            '--set', 'layer_norm_first=1', '--steps', '4', '--batch', '4', '--crop', '2', '--lr', '1e-3'])]
    if not quick:
        cases.append(('base', ['--config', 'base', '--set', 'use_cls=0', '--set', 'img_regions=16', '--set', 'img_dim=192',
                               '--steps', '2', '--batch', '2', '--crop', '1.5']))
    for i, (name, args) in enumerate(cases):
        folder = os.path.join(tmp, 'ssl_%d' % i)
        os.makedirs(folder)
        run(['./train', '--quiet', '--data', data, '--scenario', 'w2v2', '--eval-every', '1000', '--eval-batches', '1',
             '--out', os.path.join(folder, 'run')] + args)
        ckpt = os.path.join(folder, 'run', 'final.ckpt')
        path = os.path.join(folder, 'hf', 'model.safetensors')
        run(['./train', '--export-hf', ckpt, path])
        with open(os.path.join(folder, 'hf', 'config.json')) as f:
            cfg = json.load(f)
        tensors = {k: st_array(e) for k, e in read_safetensors(path)[0].items()}
        sd, rest = hf_to_ta(tensors)
        model = wav2vec2_model(**ta_config_from_hf(cfg))
        model.load_state_dict(sd, strict=True)
        model.eval()
        ours = ssl_features(ckpt, utts, os.path.join(folder, 'feat'), 'all')
        ref = ta_features(model, utts, cfg['do_stable_layer_norm'])
        compare('ssl_vgs %s (trained, exported) -> torchaudio' % name, ours, ref, layer_keys(cfg['num_hidden_layers']))
        head_out = ssl_features(ckpt, utts, os.path.join(folder, 'head'), 'codes,q,proj')
        ln_w = torch.from_numpy(np.array(tensors['wav2vec2.feature_projection.layer_norm.weight']))
        ln_b = torch.from_numpy(np.array(tensors['wav2vec2.feature_projection.layer_norm.bias']))
        check_head('exported head (%s): codes, q, proj' % name, rest, ours, head_out, ln_w, ln_b, cfg['num_codevector_groups'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='skip the base-size models')
    ap.add_argument('--keep', help='keep the files in this folder')
    args = ap.parse_args()
    try:
        import torch
        import torchaudio
    except ImportError as e:
        print('check_torchaudio: SKIP (%s; install python3-torch python3-torchaudio)' % e)
        return 0
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for prog in ('train', 'eval'):
        if not os.path.exists(os.path.join(ROOT, prog)):
            raise SystemExit('check_torchaudio: build ./%s first (make train eval)' % prog)
    print('check_torchaudio: torch %s, torchaudio %s; tolerance %.0e (max |ssl_vgs - torchaudio| / max |torchaudio| per layer)'
          % (torch.__version__, torchaudio.__version__, TOL))
    tmp = args.keep or tempfile.mkdtemp(prefix='sv_check_torch_')
    os.makedirs(tmp, exist_ok=True)
    utts = make_utterances(tmp, [1.37, 2.05, 3.61], seed=5)
    print('3 utterances of %s s (16-bit WAV, unpadded, one at a time)' % ', '.join('%.2f' % (len(y) / 16000) for _, y in utts))
    direction_torchaudio_to_ssl(tmp, utts, args.quick)
    direction_ssl_to_torchaudio(tmp, utts, args.quick)
    if not args.keep:
        subprocess.run(['rm', '-rf', tmp])
    failed = [r for r in RESULTS if not r[2]]
    print('check_torchaudio: %d checks, %d failed' % (len(RESULTS), len(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
