#!/usr/bin/env python3
"""Makes tests/fixtures/biggan/tensor_sums.json: what Python's torch.load reads from the BigGAN
fixture's tensor files, for tests/checkpoints/torch_file_test.cpp (the C++ torch.save reader).

For each folder of tests/fixtures/biggan and each file holding tensors (G.pth and D.pth: state
dicts; z.pth, y.pth, G_images.pth, D_logits.pth: bare tensors), the tensors in the file's order as
[name, shape, dtype, float64 sum] (a bare tensor has the name ""). G_ema.pth is a byte copy of
G.pth and state_dict.pth holds no tensors: neither is listed.

Run once by hand after the fixture changes (not by CI), with a Python that has torch:
  ~/.cache/longgan/venv/bin/python scripts/make_torch_file_sums.py
"""
import json
import pathlib

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "biggan"
FILES = ["G.pth", "D.pth", "z.pth", "y.pth", "G_images.pth", "D_logits.pth"]


def entry(name, tensor):
    dtype = str(tensor.dtype).removeprefix("torch.")
    return [name, list(tensor.shape), dtype, float(tensor.double().sum())]


def main():
    sums = {}
    for folder in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        for file in FILES:
            loaded = torch.load(folder / file, map_location="cpu", weights_only=True)
            if isinstance(loaded, torch.Tensor):
                rows = [entry("", loaded)]
            else:
                rows = [entry(name, tensor) for name, tensor in loaded.items()]
            sums[f"{folder.name}/{file}"] = rows
    text = "{\n" + ",\n".join(
        f"  {json.dumps(key)}: [\n" + ",\n".join("    " + json.dumps(row) for row in rows) + "\n  ]"
        for key, rows in sums.items()) + "\n}\n"
    (ROOT / "tensor_sums.json").write_text(text)


if __name__ == "__main__":
    main()
