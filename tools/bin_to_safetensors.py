#!/usr/bin/python3
"""bin_to_safetensors.py -- a Hugging Face pytorch_model.bin as model.safetensors, with torch only.

Hugging Face repositories such as facebook/wav2vec2-base ship their weights as pytorch_model.bin
(a Python pickle that C cannot read); transformers' save_pretrained(..., safe_serialization=True)
converts them, but needs transformers. This needs only Debian's python3-torch and numpy: every
floating-point tensor of the state dict is written as F32 with its name unchanged (metadata
format = pt, as transformers expects), and config.json is copied when it sits beside the input.

Usage: /usr/bin/python3 tools/bin_to_safetensors.py wav2vec2-base/pytorch_model.bin OUT_DIR
then:  ./train --init-from OUT_DIR/model.safetensors ...   or   ./eval features --model OUT_DIR/model.safetensors ...
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    import torch
    from check_torchaudio import write_safetensors
    src, out = sys.argv[1], sys.argv[2]
    sd = torch.load(src, map_location='cpu')
    if isinstance(sd, dict) and 'state_dict' in sd and isinstance(sd['state_dict'], dict):
        sd = sd['state_dict']
    tensors, skipped = [], []
    for k, v in sd.items():
        if torch.is_tensor(v) and v.is_floating_point():
            tensors.append((k, v.detach().float().cpu().numpy()))
        else:
            skipped.append(k)
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, 'model.safetensors'), tensors, {'format': 'pt'})
    cfg = os.path.join(os.path.dirname(os.path.abspath(src)), 'config.json')
    if os.path.exists(cfg) and os.path.abspath(cfg) != os.path.abspath(os.path.join(out, 'config.json')):
        shutil.copyfile(cfg, os.path.join(out, 'config.json'))
    print('%s/model.safetensors: %d tensors%s%s' % (out, len(tensors), ', config.json copied' if os.path.exists(cfg) else
                                                    ' (no config.json beside the input)',
                                                    (', skipped (not float): ' + ', '.join(skipped[:5])) if skipped else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
