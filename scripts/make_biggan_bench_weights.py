#!/usr/bin/env python3
"""Makes a full-size BigGAN-PyTorch G (the TF Hub BigGAN-256 architecture) with random weights, for
timing `longgan sample` on an imported BigGAN (issue 30; scripts/bench_biggan_sampling.sh).

What it makes: OUT/G.pth, the state dict of BigGAN-PyTorch's Generator built with the settings its
TF Hub converter gives the 256 model (TFHub/converter.py's get_config(256): G_ch 96, dim_z 140
(7 slots of 20), shared_dim 128, hier, G_shared, G_attn 128 (attention at 128x128: 16,384 queries,
4,096 pooled keys), BN_eps 1e-4, SN_eps 1e-4, n_classes 1000, resolution 256), initialised by
BigGAN-PyTorch's own init_weights (G_init ortho, its default) under a fixed seed, and saved by
torch.save (zip format) as the converter saves its ports. Unlike the converter's files it keeps the
sv0 buffers (the importer drops them either way). About 82 M parameters, ~330 MB. Also
OUT/bench_weights.json: the config, seed, versions, parameter count and the file's sha256.

Why: the TF Hub weights cannot be fetched here, and timing needs only the architecture, not trained
weights (random ortho weights run the same operations; images are not meant to look like anything).
No D (the TF Hub ports have only G), so the imported run samples only.

How to run it (not run by CI; one core, ~10 s and 1.2 GB of memory; the G.pth it writes is the
same bytes from run to run):

  git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/biggan-pytorch   # fetched for the purpose
  /root/.cache/longgan/venv/bin/python scripts/make_biggan_bench_weights.py /tmp/biggan-pytorch \\
      --out /work/measure/biggan256                                          # not in the repository
  build/bin/longgan import biggan-pytorch /work/measure/biggan256/G.pth --tfhub 256 \\
      --out /work/measure/biggan256_run
  scripts/bench_biggan_sampling.sh /work/measure/biggan256_run

BigGAN-PyTorch (MIT licence) is never vendored: this script imports BigGAN.py (and layers.py) from
the checkout given, and reads get_config out of its TFHub/converter.py with `ast` (the converter
itself imports tensorflow, which is not needed). Made with its commit
98459431a5d618d644d54cd1e9fceb1e5045648d. --resolution 128 or 512 gives the other TF Hub
architectures the same way.
"""
import argparse
import ast
import hashlib
import json
import os
import sys
import time

import torch
import torch.nn as nn

import make_biggan_fixture as fixture  # its checkout_and_commit (the script's folder is on sys.path)

SEED = 0
# What get_config(256) of the fixture's BigGAN-PyTorch commit holds (checked, so that another
# checkout cannot silently change the benchmarked architecture).
EXPECTED = {256: {'G_ch': 96, 'dim_z': 140, 'shared_dim': 128, 'hier': True, 'G_shared': True,
                  'G_attn': '128', 'BN_eps': 1e-4, 'SN_eps': 1e-4, 'n_classes': 1000,
                  'resolution': 256, 'G_init': 'ortho', 'G_param': 'SN', 'norm_style': 'bn',
                  'mybn': False, 'cross_replica': False, 'num_G_SVs': 1, 'num_G_SV_itrs': 1}}


def tfhub_config(biggan_dir, resolution):
    """TFHub/converter.py's get_config(resolution), read out of the file with `ast`."""
    path = os.path.join(biggan_dir, 'TFHub', 'converter.py')
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    keep = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == 'get_config']
    if not keep:
        sys.exit('%s has no get_config' % path)
    namespace = {'nn': nn}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, 'exec'), namespace)
    return namespace['get_config'](resolution)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('biggan_dir', help='a checkout of github.com/ajbrock/BigGAN-PyTorch')
    parser.add_argument('--out', required=True, help='directory for G.pth (created; ~330 MB at 256)')
    parser.add_argument('--resolution', type=int, default=256, choices=[128, 256, 512])
    parser.add_argument('--seed', type=int, default=SEED)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--commit', help='the checkout\'s commit, recorded in bench_weights.json where it is '
                        'not a git checkout (default: git rev-parse HEAD in it)')
    args = parser.parse_args()

    biggan_dir, commit = fixture.checkout_and_commit(args.biggan_dir, args.commit)
    out = os.path.abspath(args.out)
    path = os.path.join(out, 'G.pth')
    if os.path.exists(path):
        sys.exit('%s exists; remove it or give another --out' % path)

    torch.set_num_threads(args.threads)
    sys.path.insert(0, biggan_dir)
    import BigGAN as biggan  # noqa: E402 (BigGAN-PyTorch's, from the checkout)

    config = tfhub_config(biggan_dir, args.resolution)
    for key, value in EXPECTED.get(args.resolution, {}).items():
        if config.get(key) != value:
            sys.exit('get_config(%d) of %s has %s = %r, not %r' % (args.resolution, biggan_dir, key,
                                                                  config.get(key), value))
    # The converter builds with skip_init (it loads weights next); here BigGAN's own init makes them.
    config = {**config, 'skip_init': False, 'no_optim': True}

    start = time.time()
    torch.manual_seed(args.seed)
    G = biggan.Generator(**config)
    G.eval()
    state = G.state_dict()
    built = time.time() - start
    os.makedirs(out, exist_ok=True)
    torch.save(state, path)
    params = sum(p.numel() for p in G.parameters())
    record = {
        'what': 'BigGAN-PyTorch Generator, TF Hub %d architecture, random %s init (seed %d); '
                'made by scripts/make_biggan_bench_weights.py' % (args.resolution, config['G_init'], args.seed),
        'config': {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool, type(None)))},
        'G.dim_z': G.dim_z, 'G.z_chunk_size': G.z_chunk_size, 'G.num_slots': G.num_slots,
        'parameters': params, 'tensors': len(state),
        'seed': args.seed, 'threads': args.threads,
        'biggan_pytorch_commit': commit, 'torch': torch.__version__,
        'files': {'G.pth': {'bytes': os.path.getsize(path), 'sha256': sha256(path)}},
    }
    with open(os.path.join(out, 'bench_weights.json'), 'w') as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write('\n')
    print('wrote %s: %d tensors, %d parameters, %d bytes (G.dim_z %d, %d slots of %d); built in %.1f s, '
          'total %.1f s' % (path, len(state), params, os.path.getsize(path), G.dim_z, G.num_slots,
                            G.z_chunk_size, built, time.time() - start))


if __name__ == '__main__':
    main()
