#!/usr/bin/python3
"""compare_runs.py -- the demo's study run several times (precisions, seeds), side by side.

    python3 tools/compare_runs.py NAME=DEMO_OUT [NAME=DEMO_OUT ...] [--pairs A:B,C:D]

Each DEMO_OUT is a folder written by `./demo --out DEMO_OUT` (runs/<run>/log.jsonl and
runs/<run>/final_eval.json). For every run of the study it prints, per folder, the held-out numbers
at the end of training (loss_AV, loss_AUD, mean R@10 of both directions from the last eval line
of log.jsonl; ABX within and across, best layer, on the out-of-domain set from final_eval.json),
and for each pair A:B the largest and the mean absolute difference of A's and B's held-out
curves over the eval points (loss_AV, loss_AUD, mean R@10). Pairing two seeds of one precision
measures seed-to-seed noise; pairing two precisions of one seed, the precision's effect.
"""
import json
import os
import sys

RUNS = ['w2v2', 'vgs', 'vgsplus', 'w2v2-vgs', 'vgs-w2v2', 'vgsplus-w2v2']
CURVES = [('val_loss_av', 'loss_AV'), ('val_loss_aud', 'loss_AUD'), ('r10', 'R@10')]


def load(folder, run):
    evals, final = {}, {}
    log = os.path.join(folder, 'runs', run, 'log.jsonl')
    if os.path.exists(log):
        for line in open(log):
            d = json.loads(line)
            if d.get('kind') != 'eval':
                continue
            if d.get('r10_s2i') is not None and d.get('r10_i2s') is not None:
                d['r10'] = 0.5 * (d['r10_s2i'] + d['r10_i2s'])
            evals[d['step']] = d
    fe = os.path.join(folder, 'runs', run, 'final_eval.json')
    if os.path.exists(fe):
        final = json.load(open(fe))
    return evals, final


def num(v, fmt='%.3f'):
    return fmt % v if isinstance(v, (int, float)) else '-'


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    pairs = []
    if '--pairs' in sys.argv:
        pairs = [p.split(':') for p in sys.argv[sys.argv.index('--pairs') + 1].split(',')]
        args = [a for a in args if a != sys.argv[sys.argv.index('--pairs') + 1]]
    if not args:
        sys.exit(__doc__)
    sets = [a.split('=', 1) for a in args]
    data = {name: {run: load(folder, run) for run in RUNS} for name, folder in sets}
    print('end of training (held-out): loss_AV, loss_AUD, mean R@10 %; ABX within / across % (ood, best layer)')
    print('%-14s %-10s %8s %8s %7s %14s %14s' % ('run', 'set', 'loss_AV', 'loss_AUD', 'R@10', 'ABX within', 'ABX across'))
    for run in RUNS:
        for name, _ in sets:
            evals, final = data[name][run]
            if not evals:
                continue
            last = evals[max(evals)]
            print('%-14s %-10s %8s %8s %7s %14s %14s' % (
                run, name, num(last.get('val_loss_av')), num(last.get('val_loss_aud')),
                num(last.get('r10'), '%.1f'),
                '%s (%s)' % (num(final.get('abx_ood_within'), '%.2f'), final.get('abx_ood_within_layer', '-')),
                '%s (%s)' % (num(final.get('abx_ood_across'), '%.2f'), final.get('abx_ood_across_layer', '-'))))
    for a, b in pairs:
        print('\ncurves %s vs %s: max |difference| (mean |difference|) over the common eval points' % (a, b))
        print('%-14s %19s %19s %19s' % ('run', 'loss_AV', 'loss_AUD', 'R@10 %'))
        for run in RUNS:
            ea, eb = data[a][run][0], data[b][run][0]
            steps = sorted(set(ea) & set(eb))
            cells = []
            for key, _ in CURVES:
                d = [abs(ea[s][key] - eb[s][key]) for s in steps
                     if isinstance(ea[s].get(key), (int, float)) and isinstance(eb[s].get(key), (int, float))]
                cells.append('%8.3f (%7.3f)' % (max(d), sum(d) / len(d)) if d else '%19s' % '-')
            if steps:
                print('%-14s %s' % (run, ' '.join(cells)))


if __name__ == '__main__':
    main()
