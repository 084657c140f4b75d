#!/usr/bin/python3
"""PyTorch peer: one of our safetensors ResNets, TorchScript frozen, timed.

  /usr/bin/python3 bench/peers/torch_bench.py MODEL.safetensors BATCH THREADS SECONDS

Prints one JSON line like resnet bench's: images_per_s and ms_per_batch_median.
"""
import json
import statistics
import sys
import time

import torch

import torch_model


def main():
    path, batch, threads, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    _, model = torch_model.load(path)
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        m = torch.jit.freeze(torch.jit.script(model))
        for _ in range(3):
            m(x)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or len(times) < 3:
            t0 = time.perf_counter()
            m(x)
            times.append(time.perf_counter() - t0)
    total = sum(times)
    print(json.dumps({"engine": "pytorch " + torch.__version__, "batch": batch, "threads": threads,
                      "images_per_s": batch * len(times) / total,
                      "ms_per_batch_median": 1000 * statistics.median(times)}))


if __name__ == "__main__":
    main()
