#!/usr/bin/python3
"""What int8 classifier weights would cost: the float model's pooled features
of every photo, its logits with the classifier's weights as they are and as
int8, symmetric per class (what `resnet quantize` does to every convolution),
compared. The classifier stays float in INT8 models (docs/int8.md, "What
stays in float"); this is the measurement behind that.

  /usr/bin/python3 bench/int8_fc_weights.py [--model M] [--photos DIR]
"""
import argparse
import os
import sys

import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import calib  # noqa: E402
import torch_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "resnet50.safetensors"))
    ap.add_argument("--photos", default=os.path.join(ROOT, "models", "cache", "photos", "all"))
    a = ap.parse_args()
    _, m = torch_model.load(a.model)
    _, meta = torch_model.read_safetensors(a.model)
    pre = calib.preprocess_of(meta)
    paths = calib.image_paths([a.photos])
    feats = []
    m.avgpool.register_forward_hook(lambda mod, i, o: feats.append(o.flatten(1)))
    with torch.no_grad():
        for k in range(0, len(paths), 16):
            m(torch.from_numpy(calib.batch(paths[k:k + 16], pre)))
    e = torch.cat(feats).double()
    w, b = m.fc.weight.double(), m.fc.bias.double()
    s = w.abs().max(1).values / 127
    wq = torch.round(w / s[:, None]).clamp(-127, 127) * s[:, None]
    l0, l1 = e @ w.T + b, e @ wq.T + b
    p0, p1 = torch.softmax(l0, 1), torch.softmax(l1, 1)
    kl = (p0 * (p0.clamp_min(1e-12).log() - p1.clamp_min(1e-12).log())).sum(1)
    print("%s, %d photos of %s: int8 per-class classifier weights keep the float top-1 on %d; "
          "max |logit change| %.3f (logits' spread %.2f); mean KL %.5f"
          % (os.path.basename(a.model), len(paths), a.photos, int((l0.argmax(1) == l1.argmax(1)).sum()),
             float((l1 - l0).abs().max()), float(l0.std()), float(kl.mean())))


if __name__ == "__main__":
    main()
