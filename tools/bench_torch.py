#!/usr/bin/python3
"""bench_torch.py -- optional PyTorch reference benchmark for ssl_vgs (`small` preset).

The same `small` model and training step as the C library (wav2vec 2.0 + FaST-VGS+ style VGS
branch, see ssl_vgs.h sections 6-8), written in plain PyTorch and timed the same way as the C
benchmark so the two can be put side by side.  Nothing here is used by the library.

Run with Debian's torch:   /usr/bin/python3 tools/bench_torch.py  [--json]
Every measurement runs in a fresh subprocess (torch.set_num_threads(N) and ru_maxrss are per
process).  See tools/README_bench_torch.md.
"""
import argparse
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

# --------------------------------------------------------------------------------------------
# configuration: the `small` preset (numbers from ssl_vgs.h's sv_config_preset)
# --------------------------------------------------------------------------------------------
SMALL = dict(
    conv_layers=[(256, 10, 5)] + [(256, 3, 2)] * 4 + [(256, 2, 2)] * 2,
    C=256, D=256, heads=4, ffn=1024, n_shared=4, n_dec=2,
    dropout=0.1, attn_dropout=0.1, dropout_input=0.1, dropout_features=0.1,
    mask_prob=0.65, mask_len=10,
    pos_kernel=128, pos_groups=16,
    G=2, V=320, codevec_dim=256, final_dim=128, tau=2.0,
    n_neg=100, logit_temp=0.1, div_weight=0.1, pen_weight=10.0,
    # VGS audio branch (ResDAVEnet-style), widths for `small`
    vgs_widths=[64, 128, 256, 256], vgs_kernel=9, vgs_blocks=2, vgs_heads=4, vgs_ffn=1024,
    vgs_layers=1, E=256,
    # image branch
    R=16, Dimg=192, img_layers=2, img_heads=4, img_ffn=1024,
    margin=1.0, lr=1e-4, weight_decay=0.01, clip=1.0,
)


def import_torch():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    return torch, nn, F


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------
def build_model(cfg):
    torch, nn, F = import_torch()

    def norm(mod, x):
        """Layer and group norms in fp32, as ssl_vgs runs them: under torch 1.13's CPU autocast a
        bf16 input into these fp32-weight modules raises a dtype error (they are on neither of
        autocast's lists), so the bf16 step feeds them fp32 by hand."""
        return mod(x.float()) if cfg.get('bf16') else mod(x)

    class FeatureEncoder(nn.Module):
        """fairseq ConvFeatureExtractionModel, mode 'default': conv (no bias) -> [GroupNorm(C,C)
        on layer 0 only] -> exact GELU."""
        def __init__(self):
            super().__init__()
            layers = []
            cin = 1
            for i, (c, k, s) in enumerate(cfg['conv_layers']):
                mods = [nn.Conv1d(cin, c, k, stride=s, bias=False)]
                nn.init.kaiming_normal_(mods[0].weight)
                if i == 0:
                    mods.append(nn.GroupNorm(c, c, affine=True))
                mods.append(nn.GELU())
                layers.append(nn.Sequential(*mods))
                cin = c
            self.layers = nn.ModuleList(layers)

        def forward(self, wav):                      # [B,S] -> [B,C,T]
            x = wav.unsqueeze(1)
            for l in self.layers:
                for m in l:
                    x = norm(m, x) if isinstance(m, nn.GroupNorm) else m(x)
            return x

    class MHA(nn.Module):
        """fairseq MultiheadAttention: separate q/k/v/out projections, q scaled by 1/sqrt(dh)."""
        def __init__(self, d, h, p):
            super().__init__()
            self.h, self.dh, self.p = h, d // h, p
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)
            self.v = nn.Linear(d, d)
            self.o = nn.Linear(d, d)

        def forward(self, x):                        # x [B,T,D]; no padding in the benchmark
            B, T, D = x.shape
            q = (self.q(x) * (self.dh ** -0.5)).view(B, T, self.h, self.dh).transpose(1, 2)
            k = self.k(x).view(B, T, self.h, self.dh).transpose(1, 2)
            v = self.v(x).view(B, T, self.h, self.dh).transpose(1, 2)
            a = torch.matmul(q, k.transpose(-1, -2))
            a = F.softmax(a, dim=-1)
            a = F.dropout(a, self.p, self.training)
            y = torch.matmul(a, v).transpose(1, 2).reshape(B, T, D)
            return self.o(y)

    class PostLNLayer(nn.Module):
        """x = LN(x + drop(MHA(x))); x = LN(x + drop(fc2(GELU(fc1(x)))))"""
        def __init__(self, d, h, ffn, p, pa):
            super().__init__()
            self.attn = MHA(d, h, pa)
            self.ln1 = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, ffn)
            self.fc2 = nn.Linear(ffn, d)
            self.ln2 = nn.LayerNorm(d)
            self.p = p

        def forward(self, x):
            x = norm(self.ln1, x + F.dropout(self.attn(x), self.p, self.training))
            y = self.fc2(F.gelu(self.fc1(x)))
            return norm(self.ln2, x + F.dropout(y, self.p, self.training))

    class PosConv(nn.Module):
        """conv D->D k128 g16 pad 64, weight norm over dim 2, drop last frame, GELU."""
        def __init__(self, d, k, g):
            super().__init__()
            conv = nn.Conv1d(d, d, k, padding=k // 2, groups=g)
            nn.init.normal_(conv.weight, 0.0, math.sqrt(4.0 / (k * d)))
            nn.init.zeros_(conv.bias)
            self.conv = nn.utils.weight_norm(conv, name='weight', dim=2)
            self.k = k

        def forward(self, x):                        # [B,T,D]
            y = self.conv(x.transpose(1, 2))
            if self.k % 2 == 0:
                y = y[:, :, :-1]
            return F.gelu(y).transpose(1, 2)

    class Quantizer(nn.Module):
        """fairseq GumbelVectorQuantizer (G groups, V vars, hard straight-through)."""
        def __init__(self, cin, G, V, vdim):
            super().__init__()
            self.G, self.V = G, V
            self.vars = nn.Parameter(torch.empty(1, G * V, vdim // G).uniform_())
            self.weight_proj = nn.Linear(cin, G * V)
            nn.init.normal_(self.weight_proj.weight, 0, 1)
            nn.init.zeros_(self.weight_proj.bias)

        def forward(self, x, tau):                   # x [N,C] -> [N,vdim], prob perplexity
            N = x.shape[0]
            logits = self.weight_proj(x).view(N * self.G, -1)
            avg_probs = torch.softmax(logits.view(N, self.G, -1).float(), dim=-1).mean(0)
            perp = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-7), dim=-1)).sum()
            if self.training:
                oh = F.gumbel_softmax(logits.float(), tau=tau, hard=True).type_as(logits)
            else:
                k = logits.argmax(-1)
                oh = torch.zeros_like(logits).scatter_(-1, k.view(-1, 1), 1.0)
            if cfg.get('fairseq_quantizer'):
                # fairseq's literal broadcast: [N, G*V, vdim/G] product then a sum over V
                q = oh.view(N, -1).unsqueeze(-1) * self.vars
                q = q.view(N, self.G, self.V, -1).sum(-2).view(N, -1)
            else:
                # same values and gradients as the broadcast: per group one-hot @ codebook
                q = torch.bmm(oh.view(N, self.G, self.V).transpose(0, 1),
                              self.vars.view(self.G, self.V, -1))      # [G,N,vdim/G]
                q = q.transpose(0, 1).reshape(N, -1)
            return q, perp

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, k, stride):
            super().__init__()
            self.c1 = nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
            self.b1 = nn.BatchNorm1d(cout)
            self.c2 = nn.Conv1d(cout, cout, k, stride=1, padding=k // 2, bias=False)
            self.b2 = nn.BatchNorm1d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv1d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm1d(cout))

        def forward(self, x):
            y = F.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            r = x if self.down is None else self.down(x)
            return F.relu(y + r)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            C, D, p = cfg['C'], cfg['D'], cfg['dropout']
            self.fe = FeatureEncoder()
            self.fe_ln = nn.LayerNorm(C)
            self.post_extract_proj = nn.Linear(C, D)
            self.mask_emb = nn.Parameter(torch.empty(D).uniform_())
            self.cls = nn.Parameter(torch.empty(D).normal_(0, 0.02))
            self.pos = PosConv(D, cfg['pos_kernel'], cfg['pos_groups'])
            self.enc_ln = nn.LayerNorm(D)
            self.shared = nn.ModuleList([PostLNLayer(D, cfg['heads'], cfg['ffn'], p,
                                                     cfg['attn_dropout'])
                                         for _ in range(cfg['n_shared'])])
            self.dec = nn.ModuleList([PostLNLayer(D, cfg['heads'], cfg['ffn'], p,
                                                  cfg['attn_dropout'])
                                      for _ in range(cfg['n_dec'])])
            self.quantizer = Quantizer(C, cfg['G'], cfg['V'], cfg['codevec_dim'])
            self.project_q = nn.Linear(cfg['codevec_dim'], cfg['final_dim'])
            self.final_proj = nn.Linear(D, cfg['final_dim'])
            # VGS audio branch
            w = cfg['vgs_widths']
            self.a_in = nn.Linear(D, w[0])
            self.a_bn = nn.BatchNorm1d(w[0])
            blocks, cin = [], w[0]
            for cout in w:
                for b in range(cfg['vgs_blocks']):
                    blocks.append(BasicBlock(cin, cout, cfg['vgs_kernel'], 2 if b == 0 else 1))
                    cin = cout
            self.a_blocks = nn.Sequential(*blocks)
            assert cin == D, "last ResDAVEnet width must equal D"
            self.a_cls_mlp = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))
            self.a_trm = nn.ModuleList([PostLNLayer(D, cfg['vgs_heads'], cfg['vgs_ffn'], p,
                                                    cfg['attn_dropout'])
                                        for _ in range(cfg['vgs_layers'])])
            self.a_emb = nn.Linear(D, cfg['E'])
            # image branch
            self.i_feat = nn.Linear(cfg['Dimg'], D)
            self.i_feat_ln = nn.LayerNorm(D)
            self.i_box = nn.Linear(4, D)
            self.i_box_ln = nn.LayerNorm(D)
            self.i_cls = nn.Parameter(torch.empty(D).normal_(0, 0.02))
            self.i_trm = nn.ModuleList([PostLNLayer(D, cfg['img_heads'], cfg['img_ffn'], p,
                                                    cfg['attn_dropout'])
                                        for _ in range(cfg['img_layers'])])
            self.i_mlp = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, cfg['E']))

        def w2v2_params(self):
            skip = ('a_', 'i_')
            return [p for n, p in self.named_parameters() if not n.startswith(skip)]

        def ssl_only_params(self):
            keep = ('dec.', 'quantizer.', 'project_q.', 'final_proj.', 'mask_emb')
            return [p for n, p in self.named_parameters() if n.startswith(keep)]

        # ---- audio trunk -------------------------------------------------------------------
        def encode(self, wav, mask_idx, n_layers):
            feats = self.fe(wav)                               # [B,C,T]
            pen = feats.float().pow(2).mean()
            feats = norm(self.fe_ln, feats.transpose(1, 2))    # [B,T,C]
            unmasked = feats
            x = self.post_extract_proj(feats)
            x = F.dropout(x, cfg['dropout_input'], self.training)
            unmasked = F.dropout(unmasked, cfg['dropout_features'], self.training)
            if mask_idx is not None:
                x = x.clone()
                x[mask_idx] = self.mask_emb.to(x.dtype)
            B = x.shape[0]
            x = torch.cat([self.cls.view(1, 1, -1).expand(B, 1, -1), x], dim=1)
            x = x + self.pos(x)
            x = norm(self.enc_ln, x)
            x = F.dropout(x, cfg['dropout'], self.training)
            h_shared = None
            for i, l in enumerate(list(self.shared) + list(self.dec)[:max(0, n_layers - len(self.shared))]):
                x = l(x)
                if i == len(self.shared) - 1:
                    h_shared = x
            return x, h_shared, unmasked, pen

        # ---- wav2vec 2.0 loss ---------------------------------------------------------------
        def loss_aud(self, x_last, unmasked, mask_idx, pen, gen):
            B = x_last.shape[0]
            x = x_last[:, 1:]                                  # drop CLS
            y = unmasked[mask_idx].view(B, -1, unmasked.shape[-1])   # same count per row
            N = y.shape[1]
            q, perp = self.quantizer(y.reshape(B * N, -1), cfg['tau'])
            q = self.project_q(q).view(B, N, -1)
            # negatives: other masked frames of the same utterance (fairseq sample_negatives)
            nn_ = cfg['n_neg']
            with torch.no_grad():
                idx = torch.randint(0, N - 1, (B, N * nn_), generator=gen)
                own = torch.arange(N).unsqueeze(-1).expand(-1, nn_).flatten()
                idx[idx >= own] += 1
                idx = idx + (torch.arange(B) * N).unsqueeze(1)
            negs = q.reshape(B * N, -1)[idx.view(-1)].view(B, N, nn_, -1).permute(2, 0, 1, 3)
            c = self.final_proj(x[mask_idx].view(B, N, -1))
            neg_is_pos = (q.unsqueeze(0) == negs).all(-1)      # [nn,B,N]
            targets = torch.cat([q.unsqueeze(0), negs], dim=0)  # [1+nn,B,N,F]
            logits = torch.cosine_similarity(c.float(), targets.float(), dim=-1) / cfg['logit_temp']
            if neg_is_pos.any():
                logits[1:][neg_is_pos] = float('-inf')
            logits = logits.permute(1, 2, 0).reshape(B * N, -1)
            ce = F.cross_entropy(logits, torch.zeros(B * N, dtype=torch.long), reduction='sum')
            GV = cfg['G'] * cfg['V']
            div = (GV - perp) / GV
            n = float(B * N)
            loss = (ce + cfg['div_weight'] * div * n + cfg['pen_weight'] * pen * n) / n
            return loss, ce / n, div

        # ---- VGS ----------------------------------------------------------------------------
        def audio_embed(self, h):                              # h [B,T+1,D], CLS first
            cls, fr = h[:, 0], h[:, 1:]
            z = F.relu(self.a_bn(self.a_in(fr).transpose(1, 2)))   # [B,w0,T]
            z = self.a_blocks(z).transpose(1, 2)                # [B,T/16,D]
            z = torch.cat([self.a_cls_mlp(cls).unsqueeze(1), z], dim=1)
            for l in self.a_trm:
                z = l(z)
            return self.a_emb(z[:, 0])

        def image_embed(self, reg, box):
            z = (norm(self.i_feat_ln, self.i_feat(reg)) + norm(self.i_box_ln, self.i_box(box))) / 2
            z = F.dropout(z, cfg['dropout'], self.training)
            B = z.shape[0]
            z = torch.cat([self.i_cls.view(1, 1, -1).expand(B, 1, -1), z], dim=1)
            for l in self.i_trm:
                z = l(z)
            return self.i_mlp(z[:, 0])

    return Model()


def compute_mask(B, T, cfg, rng):
    """fairseq compute_mask_indices (mask_type static, no_overlap False, min_masks 2) +
    require_same_masks: every row trimmed at random to the smallest masked count."""
    import numpy as np
    L = cfg['mask_len']
    rows = []
    for _ in range(B):
        num = int(cfg['mask_prob'] * T / float(L) + rng.random())
        num = max(2, num)
        if T - L <= num:
            num = T - L - 1
        starts = rng.choice(T - L, num, replace=False)
        idc = np.unique(np.concatenate([starts + j for j in range(L)]))
        rows.append(idc[idc < T])
    m = min(len(r) for r in rows)
    mask = np.zeros((B, T), dtype=bool)
    for b, r in enumerate(rows):
        if len(r) > m:
            r = rng.choice(r, m, replace=False)
        mask[b, r] = True
    return mask


def conv_out_len(S, cfg):
    T = S
    for (_, k, s) in cfg['conv_layers']:
        T = (T - k) // s + 1
    return T


# --------------------------------------------------------------------------------------------
# analytic FLOP count
# --------------------------------------------------------------------------------------------
def count_flops(cfg, B, S, alpha, n_masked):
    """MACs of the forward pass (convs, linears, attention score/value matmuls, quantizer
    one-hot x codebook); FLOP = 2*MAC; training step ~ 3x forward (backward = 2x forward:
    grad wrt input + grad wrt weight), except conv layer 0 whose input (the waveform) needs no
    gradient (2x).  Elementwise ops, norms, softmax are not counted."""
    D, H, F_ = cfg['D'], cfg['heads'], cfg['ffn']
    parts = {}
    T, cin, conv0, conv_rest = S, 1, 0, 0
    for i, (c, k, s) in enumerate(cfg['conv_layers']):
        T = (T - k) // s + 1
        m = B * T * c * cin * k
        if i == 0:
            conv0 += m
        else:
            conv_rest += m
        cin = c
    Tf = T
    Tt = Tf + 1                                        # + CLS

    def layer_macs(Bn, Tn, d, ffn):
        return Bn * Tn * (4 * d * d + 2 * d * ffn) + 2 * Bn * Tn * Tn * d

    parts['feature_encoder_conv'] = conv0 + conv_rest
    parts['post_extract_proj'] = B * Tf * cfg['C'] * D
    parts['pos_conv'] = B * Tt * D * (D // cfg['pos_groups']) * cfg['pos_kernel']
    parts['shared_layers'] = cfg['n_shared'] * layer_macs(B, Tt, D, F_)
    if alpha < 1.0:
        N = B * n_masked
        GV = cfg['G'] * cfg['V']
        parts['decoder_layers'] = cfg['n_dec'] * layer_macs(B, Tt, D, F_)
        parts['quantizer'] = N * cfg['C'] * GV + N * GV * (cfg['codevec_dim'] // cfg['G']) \
            + N * cfg['codevec_dim'] * cfg['final_dim']
        parts['final_proj'] = N * D * cfg['final_dim']
        parts['contrastive_cos'] = N * (cfg['n_neg'] + 1) * cfg['final_dim']
    if alpha > 0.0:
        w = cfg['vgs_widths']
        k = cfg['vgs_kernel']
        m = B * Tf * D * w[0]
        t, cin = Tf, w[0]
        for cout in w:
            for b in range(cfg['vgs_blocks']):
                st = 2 if b == 0 else 1
                t2 = (t + 2 * (k // 2) - k) // st + 1
                m += B * t2 * cout * cin * k + B * t2 * cout * cout * k
                if st != 1 or cin != cout:
                    m += B * t2 * cout * cin
                t, cin = t2, cout
        m += B * (D * 2 * D * 2)                               # CLS MLP
        m += cfg['vgs_layers'] * layer_macs(B, t + 1, D, cfg['vgs_ffn'])
        m += B * D * cfg['E']
        parts['vgs_audio'] = m
        R = cfg['R']
        parts['image'] = B * R * (cfg['Dimg'] * D + 4 * D) \
            + cfg['img_layers'] * layer_macs(B, R + 1, D, cfg['img_ffn']) \
            + B * (D * 2 * D + 2 * D * cfg['E']) + B * B * cfg['E']
    fwd_macs = sum(parts.values())
    fwd = 2 * fwd_macs
    step = 3 * fwd - 2 * conv0                         # conv0: no input gradient
    return dict(parts_fwd_gflop={k: 2 * v / 1e9 for k, v in parts.items()},
                fwd_gflop=fwd / 1e9, step_gflop=step / 1e9, frames=Tf,
                formula="FLOP_step = 3 * 2 * MAC_fwd - 2 * MAC_conv0; MAC_fwd = sum over convs "
                        "B*T_out*C_out*C_in/groups*k + linears B*T*d_in*d_out + attention "
                        "2*B*T^2*D per layer + quantizer one-hot x codebook")


# --------------------------------------------------------------------------------------------
# profiler categories
# --------------------------------------------------------------------------------------------
CATS = [
    ('conv', re.compile(r'conv|mkldnn_convolution|slow_conv')),
    ('matmul/linear', re.compile(r'addmm|^aten::mm$|bmm|matmul|linear|^aten::dot|^aten::mv$|'
                                 r'^aten::_mm|AddmmBackward|MmBackward|BmmBackward')),
    ('gelu', re.compile(r'gelu')),
    ('layer/group/batch norm', re.compile(r'layer_norm|group_norm|batch_norm|_weight_norm|'
                                          r'norm_except_dim|^aten::norm$')),
    ('softmax/attention', re.compile(r'softmax|SoftmaxBackward')),
    ('dropout/rng', re.compile(r'dropout|bernoulli|exponential|uniform|randint|gumbel')),
    ('optimizer', re.compile(r'Optimizer|adam|_foreach|addcdiv|addcmul|lerp|sqrt')),
    ('copy/index/cat', re.compile(r'copy_|clone|contiguous|cat|index|gather|scatter|'
                                  r'masked|nonzero|select_backward|slice_backward|_to_copy|'
                                  r'empty|zero_|fill_|zeros|repeat|expand|permute|transpose')),
    ('elementwise', re.compile(r'add|mul|div|sub|pow|exp|log|relu|threshold|sum|mean|neg|'
                               r'where|eq|all|clamp|cosine|cross_entropy|nll|max|min|sign|abs')),
]


def categorize(name):
    n = name
    for cat, rx in CATS:
        if rx.search(n):
            return cat
    return 'other'


def profile_summary(prof):
    ev = prof.key_averages()
    cats, ops = {}, {}
    for e in ev:
        t = e.self_cpu_time_total / 1e3           # ms
        if t <= 0:
            continue
        ops[e.key] = ops.get(e.key, 0.0) + t
        c = categorize(e.key)
        cats[c] = cats.get(c, 0.0) + t
    return cats, ops


# --------------------------------------------------------------------------------------------
# worker (one subprocess per measurement)
# --------------------------------------------------------------------------------------------
def loaded_blas():
    libs = set()
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                p = line.split()[-1]
                if re.search(r'(blas|mkl|lapack|dnnl|blis)', os.path.basename(p)):
                    libs.add(p)
    except OSError:
        pass
    return sorted(libs)


def worker(args):
    torch, nn, F = import_torch()
    import numpy as np
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = dict(SMALL)
    cfg['fairseq_quantizer'] = args.fairseq_quantizer
    cfg['bf16'] = args.bf16
    B, S = args.batch, int(round(args.seconds * 16000))
    alpha = args.alpha
    model = build_model(cfg)
    T = conv_out_len(S, cfg)
    gen = torch.Generator().manual_seed(args.seed + 1)
    wav = torch.randn(B, S, generator=gen)
    wav = (wav - wav.mean(1, keepdim=True)) / wav.std(1, keepdim=True)   # per-utterance norm
    reg = torch.randn(B, cfg['R'], cfg['Dimg'], generator=gen)
    g = int(math.sqrt(cfg['R']))
    boxes = []
    for i in range(cfg['R']):
        r, c = divmod(i, g)
        boxes.append([c / g, r / g, (c + 1) / g, (r + 1) / g])
    box = torch.tensor(boxes).unsqueeze(0).expand(B, -1, -1).contiguous()
    rng = np.random.default_rng(args.seed + 2)
    out = dict(mode=args.mode, threads=args.threads, alpha=alpha, batch=B, seconds=args.seconds,
               frames=T, torch_num_threads=torch.get_num_threads(),
               precision='bf16 autocast' if args.bf16 else 'fp32')

    if args.mode == 'extract':
        model.eval()
        n_layers = cfg['n_shared'] + cfg['n_dec']
        times = []
        with torch.no_grad():
            for i in range(args.warmup + args.steps):
                t0 = time.perf_counter()
                x, _, _, _ = model.encode(wav, None, n_layers)
                t1 = time.perf_counter()
                if i >= args.warmup:
                    times.append(t1 - t0)
        med = statistics.median(times)
        out.update(median_s=med, min_s=min(times), times_s=times,
                   x_realtime=B * args.seconds / med,
                   fwd_gflop=count_flops(cfg, B, S, 0.0, 0)['fwd_gflop']
                   - 0.0)
        # extraction = CNN + proj + pos + all layers (no quantizer / losses)
        fl = count_flops(cfg, B, S, 0.0, 0)['parts_fwd_gflop']
        ext = sum(v for k, v in fl.items() if k in ('feature_encoder_conv', 'post_extract_proj',
                                                    'pos_conv', 'shared_layers',
                                                    'decoder_layers'))
        out['fwd_gflop'] = ext
        out['gflops_per_s'] = ext / med
        out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        out['blas_libs'] = loaded_blas()
        return out

    model.train()
    use_aud, use_av = alpha < 1.0, alpha > 0.0
    if use_av and use_aud:
        params = list(model.parameters())
    elif use_aud:
        params = model.w2v2_params()
    else:
        ssl = set(id(p) for p in model.ssl_only_params())
        params = [p for p in model.w2v2_params() if id(p) not in ssl] + \
            [p for n, p in model.named_parameters() if n.startswith(('a_', 'i_'))]
    opt = torch.optim.AdamW(params, lr=cfg['lr'], weight_decay=cfg['weight_decay'])
    n_layers = cfg['n_shared'] + (cfg['n_dec'] if use_aud else 0)
    last = {}

    def fwd():
        mask = torch.from_numpy(compute_mask(B, T, cfg, rng)) if use_aud else None
        # --bf16: the encoder and the branches under CPU autocast (conv, linear, matmul in
        # bf16 through oneDNN), the losses with the quantizer's logits in fp32, as ssl_vgs's
        # --precision bf16
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=args.bf16):
            x, h, unm, pen = model.encode(wav, mask, n_layers)
            if use_av:
                a = model.audio_embed(h)
                v = model.image_embed(reg, box)
        loss = torch.zeros(())
        if use_aud:
            la, ce, div = model.loss_aud(x.float(), unm.float(), mask, pen, gen)
            loss = loss + (1 - alpha) * la
            last['loss_aud'] = float(la)
            last['n_masked_per_row'] = int(mask[0].sum())
        if use_av:
            Sm = v.float() @ a.float().t()                     # [images, captions]
            Sm = Sm - cfg['margin'] * torch.eye(B)
            tgt = torch.arange(B)
            lav = F.cross_entropy(Sm, tgt) + F.cross_entropy(Sm.t(), tgt)
            loss = loss + alpha * lav
            last['loss_av'] = float(lav)
        return loss

    def bwd_step(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg['clip'])
        opt.step()

    times, ftimes, cpus = [], [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = fwd()
        t1 = time.perf_counter()
        bwd_step(loss)
        t2 = time.perf_counter()
        if i >= args.warmup:
            times.append(t2 - t0)
            ftimes.append(t1 - t0)
            cpus.append(time.process_time() - c0)   # with one thread: the step without waits
    med = statistics.median(times)
    nm = last.get('n_masked_per_row', 0)
    fl = count_flops(cfg, B, S, alpha, nm)
    out.update(median_s=med, min_s=min(times), times_s=times, cpu_median_s=statistics.median(cpus),
               fwd_median_s=statistics.median(ftimes),
               bwd_opt_median_s=statistics.median([a - b for a, b in zip(times, ftimes)]),
               step_gflop=fl['step_gflop'], fwd_gflop=fl['fwd_gflop'],
               parts_fwd_gflop=fl['parts_fwd_gflop'], gflops_per_s=fl['step_gflop'] / med,
               n_params=sum(p.numel() for p in params),
               n_params_total=sum(p.numel() for p in model.parameters()), **last)

    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        pf = {'fwd': None, 'bwd': None, 'opt': None}
        acc = {k: ({}, {}) for k in pf}
        for _ in range(args.profile):
            with profile(activities=[ProfilerActivity.CPU]) as p1:
                loss = fwd()
            with profile(activities=[ProfilerActivity.CPU]) as p2:
                opt.zero_grad(set_to_none=True)
                loss.backward()
            with profile(activities=[ProfilerActivity.CPU]) as p3:
                torch.nn.utils.clip_grad_norm_(params, cfg['clip'])
                opt.step()
            for k, p in (('fwd', p1), ('bwd', p2), ('opt', p3)):
                c, o = profile_summary(p)
                for d_src, d_dst in ((c, acc[k][0]), (o, acc[k][1])):
                    for kk, vv in d_src.items():
                        d_dst[kk] = d_dst.get(kk, 0.0) + vv / args.profile
        out['profile'] = {k: {'categories_ms': v[0], 'ops_ms': v[1]} for k, v in acc.items()}
    out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out['blas_libs'] = loaded_blas()
    return out


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------
def machine_info():
    import torch
    cpu = 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    cfgtxt = torch.__config__.show()
    keep = []
    for line in cfgtxt.splitlines():
        l = line.strip()
        if re.search(r'MKL|OpenMP|CPU capability', l) and not l.startswith('- Build settings'):
            keep.append(l.lstrip('- '))
    m = re.search(r'BLAS_INFO=([^,]*)', cfgtxt)
    if m:
        keep.append('BLAS_INFO=' + m.group(1))
    return dict(cpu=cpu, logical_cpus=os.cpu_count(), python=platform.python_version(),
                torch=torch.__version__, torch_config=keep,
                openblas_coretype=os.environ.get('OPENBLAS_CORETYPE'))


def run_child(args, mode, threads, alpha, profile):
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', mode, '--threads', str(threads),
           '--steps', str(args.steps), '--warmup', str(args.warmup), '--alpha', str(alpha),
           '--seconds', str(args.seconds), '--batch', str(args.batch), '--seed', str(args.seed),
           '--profile', str(profile)] + (['--fairseq-quantizer'] if args.fairseq_quantizer else []) + \
        (['--bf16'] if args.bf16 else [])
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    # Debian's OpenBLAS is the pthread build: its own pool plus torch's spinning OpenMP pool
    # oversubscribe the cores (measured here: 2 torch threads + 2 OpenBLAS threads ~7.5 s/step
    # for alpha 0, with 1 OpenBLAS thread ~1 s).  Default: BLAS single-threaded.
    env['OPENBLAS_NUM_THREADS'] = str(args.blas_threads if args.blas_threads > 0 else threads)
    if args.blas_dir:
        env['LD_LIBRARY_PATH'] = args.blas_dir + (':' + env['LD_LIBRARY_PATH']
                                                  if env.get('LD_LIBRARY_PATH') else '')
    load0 = os.getloadavg()[0]
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit('worker failed: ' + ' '.join(cmd))
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # 1-min load average before/after: other processes on the machine inflate the times
    # (OpenMP threads spin at barriers), so the driver records it with every run.
    out['loadavg_before'], out['loadavg_after'] = load0, os.getloadavg()[0]
    if max(load0, out['loadavg_after']) > (os.cpu_count() or 1) + 0.5:
        sys.stderr.write('WARNING: load average %.1f/%.1f during the %s run (threads %d): the '
                         'machine is busy, times are inflated; compare min_s too.\n'
                         % (load0, out['loadavg_after'], mode, threads))
    return out


def print_profile(res, top=10):
    prof = res.get('profile')
    if not prof:
        return
    print('\n  per-op-type self CPU time, ms per step (torch.profiler; %d thread(s), alpha %g)'
          % (res['threads'], res['alpha']))
    cats = sorted(set().union(*[set(prof[k]['categories_ms']) for k in prof]),
                  key=lambda c: -sum(prof[k]['categories_ms'].get(c, 0) for k in prof))
    print('  %-24s %9s %9s %9s %9s' % ('category', 'forward', 'backward', 'optim', 'total'))
    tot = {k: sum(prof[k]['categories_ms'].values()) for k in prof}
    for c in cats:
        v = [prof[k]['categories_ms'].get(c, 0.0) for k in ('fwd', 'bwd', 'opt')]
        print('  %-24s %9.1f %9.1f %9.1f %9.1f' % (c, v[0], v[1], v[2], sum(v)))
    print('  %-24s %9.1f %9.1f %9.1f %9.1f' % ('(sum)', tot['fwd'], tot['bwd'], tot['opt'],
                                                sum(tot.values())))
    allops = {}
    for k in prof:
        for o, t in prof[k]['ops_ms'].items():
            allops[(k, o)] = t
    print('\n  top %d ops by self CPU time (ms per step)' % top)
    for (k, o), t in sorted(allops.items(), key=lambda kv: -kv[1])[:top]:
        print('  %-4s %-44s %8.1f  [%s]' % (k, o[:44], t, categorize(o)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--threads', default='1,2', help='comma list of thread counts (default 1,2)')
    ap.add_argument('--steps', type=int, default=10, help='timed steps (default 10)')
    ap.add_argument('--warmup', type=int, default=3, help='warm-up steps (default 3)')
    ap.add_argument('--alpha', type=float, default=0.5, help='joint loss weight (default 0.5)')
    ap.add_argument('--seconds', type=float, default=2.0, help='audio length in s (default 2.0)')
    ap.add_argument('--batch', type=int, default=8, help='utterances/images per step (default 8)')
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--profile', type=int, default=2,
                    help='profiled steps (after timing) per joint run; 0 disables (default 2)')
    ap.add_argument('--no-w2v2', action='store_true', help='skip the alpha=0 step')
    ap.add_argument('--no-extract', action='store_true', help='skip the feature-extraction run')
    ap.add_argument('--blas-dir', default=None,
                    help='directory prepended to LD_LIBRARY_PATH of the workers, e.g. an\n'
                         'OpenBLAS libblas.so.3 directory, to choose the BLAS torch loads')
    ap.add_argument('--fairseq-quantizer', action='store_true',
                    help="codevector lookup as fairseq writes it (broadcast one-hot * codebook,\n"
                         "sum over V; ~1 s/step slower here) instead of the equivalent bmm")
    ap.add_argument('--bf16', action='store_true',
                    help='train steps in bf16 mixed precision: the encoder and branches under\n'
                         'torch.autocast("cpu", dtype=torch.bfloat16), norms and losses in fp32')
    ap.add_argument('--blas-threads', type=int, default=1,
                    help='OPENBLAS_NUM_THREADS of the workers; 0 = same as --threads (default 1)')
    ap.add_argument('--json', action='store_true', help='print one JSON object only')
    ap.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        args.mode = args.worker
        args.threads = int(args.threads)
        print(json.dumps(worker(args)))
        return

    if os.environ.get('OPENBLAS_CORETYPE'):
        sys.stderr.write('WARNING: OPENBLAS_CORETYPE=%s is set; it forces slower kernels on this '
                         'machine. Run `unset OPENBLAS_CORETYPE` before measuring.\n'
                         % os.environ['OPENBLAS_CORETYPE'])
    threads = [int(t) for t in str(args.threads).split(',') if t]
    if not args.json and not args.blas_dir and \
            os.path.realpath('/usr/lib/x86_64-linux-gnu/libblas.so.3').find('/blas/') >= 0:
        sys.stderr.write('NOTE: torch will load the reference (netlib) BLAS, whose sgemm is '
                         '~10x slower than OpenBLAS; see --blas-dir in README_bench_torch.md.\n')
    info = machine_info()
    res = dict(machine=info, config='small', batch=args.batch, seconds=args.seconds,
               steps=args.steps, warmup=args.warmup, blas_threads=args.blas_threads, runs=[])
    for th in threads:
        res['runs'].append(run_child(args, 'train', th, args.alpha, args.profile))
        if not args.no_w2v2 and args.alpha != 0.0:
            res['runs'].append(run_child(args, 'train', th, 0.0, 0))
        if not args.no_extract:
            res['runs'].append(run_child(args, 'extract', th, 0.0, 0))
    if args.json:
        print(json.dumps(res, indent=1))
        return

    print('ssl_vgs PyTorch reference benchmark (config small)')
    print('  CPU: %s (%d logical CPUs)   python %s   torch %s'
          % (info['cpu'], info['logical_cpus'], info['python'], info['torch']))
    for l in info['torch_config']:
        print('  ' + l)
    print('  BLAS loaded by workers: %s (OPENBLAS_NUM_THREADS %s)'
          % (', '.join(res['runs'][0].get('blas_libs', [])),
             args.blas_threads if args.blas_threads > 0 else 'same as --threads'))
    r0 = res['runs'][0]
    print('  step: batch %d x %.1f s audio (%d frames, %d masked/row) + %d images x %d regions;'
          ' median of %d after %d warm-up'
          % (args.batch, args.seconds, r0['frames'], r0.get('n_masked_per_row', 0), args.batch,
             SMALL['R'], args.steps, args.warmup))
    print('\n  %-22s %7s %10s %7s %9s %9s %9s %9s %8s %5s'
          % ('run', 'threads', 'median s', 'min s', 'fwd s', 'bwd+opt s', 'GFLOP', 'GFLOP/s',
             'RSS MB', 'load'))
    for r in res['runs']:
        if r['mode'] == 'extract':
            name = 'extract (eval, no grad)'
            print('  %-22s %7d %10.3f %7.3f %9s %9s %9.1f %9.1f %8.0f %5.1f  %.1fx real time'
                  % (name[:22], r['threads'], r['median_s'], r['min_s'], '-', '-',
                     r['fwd_gflop'], r['gflops_per_s'], r['peak_rss_mb'],
                     max(r['loadavg_before'], r['loadavg_after']), r['x_realtime']))
        else:
            name = 'train alpha=%g%s' % (r['alpha'], ' bf16' if r.get('precision', 'fp32') != 'fp32' else '')
            print('  %-22s %7d %10.3f %7.3f %9.3f %9.3f %9.1f %9.1f %8.0f %5.1f'
                  % (name, r['threads'], r['median_s'], r['min_s'], r['fwd_median_s'],
                     r['bwd_opt_median_s'], r['step_gflop'], r['gflops_per_s'],
                     r['peak_rss_mb'], max(r['loadavg_before'], r['loadavg_after'])))
    fl = count_flops(SMALL, args.batch, int(round(args.seconds * 16000)), args.alpha,
                     r0.get('n_masked_per_row', 0))
    print('\n  FLOP count (alpha %g): forward %.2f GFLOP, step %.2f GFLOP'
          % (args.alpha, fl['fwd_gflop'], fl['step_gflop']))
    print('  ' + fl['formula'])
    for k, v in fl['parts_fwd_gflop'].items():
        print('    fwd %-22s %8.3f GFLOP' % (k, v))
    for r in res['runs']:
        print_profile(r)


if __name__ == '__main__':
    main()
