#!/usr/bin/env python3
"""Times training steps of the peer of issue 33: BigGAN-PyTorch, dense or with the official SMYRF layer.

What: builds BigGAN-PyTorch's G and D (its own BigGAN.py and layers.py, from a checkout given as an
argument) at 64x64 with G_ch = D_ch = 16, G attention at 64x64 (4,096 queries, 1,024 max-pooled
keys), no D attention, batch 16, and runs --steps training steps of BigGAN-PyTorch's
train_fns.GAN_training_function on random real images (uniform in [-1, 1], class 0 of 1), on the
CPU. With --attention smyrf, G's attention block is the SMYRF paper's BigGAN attention layer
(AttentionApproximation of examples/gpu_biggan/layers.py of github.com/giannisdaras/smyrf, around
its official smyrf.torch.attn.SmyrfAttention), taken from a smyrf checkout given as an argument.
It prints one line:

  peer_step: attention=dense steps=35 batch=16 d_steps=2 seconds=S images_per_s=I
             first_step_s=F peak_rss_mib=M threads=T G_params=P D_params=Q G_loss=L

seconds: the wall time of the --steps training steps (model construction and imports excluded);
images_per_s: real images through D per second, batch x num_D_steps x steps / seconds, as
`longgan train` counts them; peak_rss_mib: the process's peak resident set (getrusage).

Why: issue 33 compares LongGAN's training step speed against this peer at the same workload;
scripts/bench_step_vs_peer.sh runs both as whole processes, interleaved, and takes medians.

How to run (not run by CI; it fetches nothing itself: the two checkouts are fetched for the
purpose and never vendored, and no file of them is copied into this repository):

  git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/biggan-pytorch
  git clone https://github.com/giannisdaras/smyrf /tmp/smyrf
  /root/.cache/longgan/venv/bin/python scripts/peer_step.py /tmp/biggan-pytorch /tmp/smyrf \\
      --attention dense --steps 35
  /root/.cache/longgan/venv/bin/python scripts/peer_step.py /tmp/biggan-pytorch /tmp/smyrf \\
      --attention smyrf --steps 35      # n_hashes 2, q_cluster 512, k_cluster 128

Written against BigGAN-PyTorch 98459431a5d618d644d54cd1e9fceb1e5045648d and smyrf
bbbc82e0126233da07841275daa238d447c37f66. Threads: torch's default (set OMP_NUM_THREADS to pin).

How faithful it is:
- Models: BigGAN-PyTorch's Generator/Discriminator/G_D, from the config dict its train.py builds out
  of the flags in FLAGS (its own utils.prepare_parser, read with make_biggan_fixture's
  load_from_utils: utils.py, which imports torchvision and h5py-backed datasets, is not imported).
  FLAGS are launch_BigGAN_bs256x8.sh's (hier, dim_z 120, shared_dim 128, ortho init, SN_eps 1e-6,
  adam_eps 1e-6, G_lr 1e-4, D_lr 4e-4, betas 0/0.999, EMA copied before ema_start) with
  the issue's sizes, num_D_steps 2, no accumulation, and G_ortho 1e-4 (the BigGAN paper's
  value, BigGAN-PyTorch's comment on its flag, and `longgan train`'s default --ortho), so that both
  sides do the same work per step.
- The step: train_fns.py imports torchvision at its top, so it is not imported; its
  GAN_training_function is read out of the checkout's train_fns.py with `ast` and executed
  verbatim, with BigGAN-PyTorch's own losses.py and with utils.toggle_grad/ortho/ema/Distribution/
  prepare_z_y read out of utils.py the same way. The loop around it is train.py's: itr += 1,
  G.train(), D.train(), G_ema.train(), then train(x, y) on a batch of batch_size x num_D_steps
  real images.
- One change to BigGAN-PyTorch's code: utils.Distribution (the z_/y_ tensor subclass) gets
  torch's disabled __torch_function__, so that, as under the torch 1.0 it was written for, the
  results of operations on z_ are plain tensors; under torch >= 1.7 they would otherwise be
  Distribution instances and every operation of G would dispatch through Python (overhead the
  original never had).
- SMYRF: G is built while BigGAN-PyTorch's layers.Attention is swapped for a factory of the
  fork's AttentionApproximation, with the arguments the fork's BigGAN.py Generator passes it
  (which_conv = G.which_conv, the fork's defaults max_iters 10, r 1, progress False) and
  q_attn_size = q_cluster_size, k_attn_size = k_cluster_size as the fork's main.py sets them
  (SmyrfAttention clusters by the *attn* sizes: the fork's Generator defaults of 64 would otherwise
  apply). That is exactly the line of the fork's BigGAN.py that differs from BigGAN-PyTorch's
  (`layers.AttentionApproximation(...)` where upstream has `layers.Attention(...)`); the rest of
  the fork's BigGAN.py differs only in attention-map plumbing for visualisation. The fork's
  layers.py is loaded from the smyrf checkout under its own module name (it imports
  smyrf.torch.attn from the checkout and sync_batchnorm from BigGAN-PyTorch's). Checked by hand:
  with q_cluster 4096 and k_cluster 1024 (one cluster) the fork's layer, given the dense block's
  weights, matches BigGAN-PyTorch's dense Attention to 2e-6; G and D have the parameter counts of
  `longgan train` at the same flags (2,334,916 and 1,223,345).
- One change to smyrf's code: XBOXPLUS.K/Q build their zero column in a way torch 2 accepts
  (patch_xboxplus; smyrf's own line raises a TypeError under torch >= 2).
"""
import argparse
import ast
import importlib.util
import os
import resource
import sys
import time
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_biggan_fixture  # noqa: E402 (this repository's; load_from_utils, train_config)

RESOLUTION = 64
N_CLASSES = 1  # `longgan prepare --synthetic` data is unconditional (--classes 1)
FLAGS = ['--G_shared', '--hier', '--dim_z', '120', '--shared_dim', '128',
         '--G_ch', '16', '--D_ch', '16', '--batch_size', '16',
         '--G_attn', '64', '--D_attn', '0',
         '--G_nl', 'inplace_relu', '--D_nl', 'inplace_relu',
         '--G_init', 'ortho', '--D_init', 'ortho',
         '--SN_eps', '1e-6', '--BN_eps', '1e-5', '--adam_eps', '1e-6',
         '--G_lr', '1e-4', '--D_lr', '4e-4', '--G_B1', '0.0', '--D_B1', '0.0',
         '--G_B2', '0.999', '--D_B2', '0.999',
         '--num_D_steps', '2', '--num_D_accumulations', '1', '--num_G_accumulations', '1',
         '--G_ortho', '1e-4', '--G_eval_mode', '--ema', '--use_ema', '--ema_start', '20000']


def load_definitions(path, names, namespace):
    """Top-level classes and functions `names` of the Python file `path`, executed in `namespace`.

    For what make_biggan_fixture.load_from_utils does not cover: classes, and files other than
    utils.py."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    keep = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names]
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, 'exec'), namespace)
    missing = [n for n in names if n not in namespace]
    if missing:
        sys.exit('%s lacks %s' % (path, missing))
    return namespace


def patch_xboxplus():
    """smyrf's XBOXPLUS.K/Q, with their zero column made so that torch 2 accepts it.

    smyrf's `torch.tensor(0.0).repeat(x.shape[:-1], 1).unsqueeze(-1)` (a torch.Size and an int
    as repeat's sizes) is refused by torch >= 2 ("repeat() takes 1 positional argument but 2 were
    given"); the column it means, zeros of shape x.shape[:-1] + (1,) (what the torch.cat with x
    along the last axis needs), is made with new_zeros. Everything else is smyrf's code."""
    from smyrf.torch import utils as smyrf_utils

    def K(self, x):
        device = x.device
        ext = torch.sqrt((self.MQ**2).to(device) + (self.MK**2).to(device) - (self.k_norms**2).to(device))
        zero = x.new_zeros(x.shape[:-1] + (1,))
        return torch.cat((x, ext, zero), -1)

    def Q(self, x):
        device = x.device
        ext = torch.sqrt((self.MQ**2).to(device) + (self.MK**2).to(device) - (self.q_norms**2).to(device))
        zero = x.new_zeros(x.shape[:-1] + (1,))
        return torch.cat((x, zero, ext), -1)

    smyrf_utils.XBOXPLUS.K = K
    smyrf_utils.XBOXPLUS.Q = Q


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('biggan_dir', help='a checkout of github.com/ajbrock/BigGAN-PyTorch')
    parser.add_argument('smyrf_dir', help='a checkout of github.com/giannisdaras/smyrf')
    parser.add_argument('--attention', choices=['dense', 'smyrf'], default='dense')
    parser.add_argument('--steps', type=int, default=35)
    parser.add_argument('--hashes', type=int, default=2)
    parser.add_argument('--q-cluster', type=int, default=512)
    parser.add_argument('--k-cluster', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    biggan_dir = os.path.abspath(args.biggan_dir)
    smyrf_dir = os.path.abspath(args.smyrf_dir)
    fork_layers = os.path.join(smyrf_dir, 'examples', 'gpu_biggan', 'layers.py')
    if not os.path.isfile(os.path.join(biggan_dir, 'BigGAN.py')):
        sys.exit('%s: no BigGAN.py; give a checkout of BigGAN-PyTorch' % biggan_dir)
    if not os.path.isfile(os.path.join(smyrf_dir, 'smyrf', 'torch', 'attn.py')) or not os.path.isfile(fork_layers):
        sys.exit('%s: no smyrf/torch/attn.py or examples/gpu_biggan/layers.py; give a checkout of smyrf'
                 % smyrf_dir)
    sys.path.insert(0, smyrf_dir)
    sys.path.insert(0, biggan_dir)
    import BigGAN as biggan  # noqa: E402 (BigGAN-PyTorch's, from the checkout)
    import losses  # noqa: E402,F401 (BigGAN-PyTorch's; imports only torch)

    utils_ns = make_biggan_fixture.load_from_utils(
        biggan_dir, ['prepare_parser', 'activation_dict', 'toggle_grad', 'ortho', 'prepare_z_y'])
    utils_ns['torch'] = torch
    load_definitions(os.path.join(biggan_dir, 'utils.py'), ['Distribution', 'ema'], utils_ns)
    # See the header: plain tensors out of operations on z_ and y_, as under torch 1.0.
    utils_ns['Distribution'].__torch_function__ = torch._C._disabled_torch_function_impl
    utils = types.SimpleNamespace(**utils_ns)
    train_fns_ns = load_definitions(os.path.join(biggan_dir, 'train_fns.py'), ['GAN_training_function'],
                                    {'torch': torch, 'utils': utils, 'losses': losses})

    config = make_biggan_fixture.train_config(utils_ns, FLAGS, RESOLUTION, N_CLASSES)
    torch.manual_seed(args.seed)

    attention = biggan.layers.Attention
    if args.attention == 'smyrf':
        spec = importlib.util.spec_from_file_location('smyrf_gpu_biggan_layers', fork_layers)
        fork = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fork)
        patch_xboxplus()

        def attention(ch, which_conv, name='attention'):
            # The fork's BigGAN.py Generator, its one changed line (q/k_attn_size as its main.py).
            return fork.AttentionApproximation(ch, n_hashes=args.hashes, clustering_algo='lsh',
                                               q_cluster_size=args.q_cluster, k_cluster_size=args.k_cluster,
                                               q_attn_size=args.q_cluster, k_attn_size=args.k_cluster,
                                               which_conv=which_conv, progress=False, max_iters=10, r=1)

    def generator(**kwargs):
        upstream = biggan.layers.Attention
        biggan.layers.Attention = attention
        try:
            return biggan.Generator(**kwargs)
        finally:
            biggan.layers.Attention = upstream

    G = generator(**config)
    D = biggan.Discriminator(**config)
    G_ema = generator(**{**config, 'skip_init': True, 'no_optim': True})
    kinds = [type(m).__name__ for m in G.modules() if 'Attention' in type(m).__name__]
    assert kinds == (['AttentionApproximation', 'SmyrfAttention'] if args.attention == 'smyrf'
                     else ['Attention']), kinds
    assert not any('Attention' in type(m).__name__ for m in D.modules())
    ema = utils.ema(G, G_ema, config['ema_decay'], config['ema_start'])
    GD = biggan.G_D(G, D)

    state_dict = {'itr': 0, 'epoch': 0, 'save_num': 0, 'save_best_num': 0,
                  'best_IS': 0, 'best_FID': 999999, 'config': config}
    D_batch_size = config['batch_size'] * config['num_D_steps'] * config['num_D_accumulations']
    G_batch_size = max(config['G_batch_size'], config['batch_size'])
    z_, y_ = utils.prepare_z_y(G_batch_size, G.dim_z, config['n_classes'], device='cpu',
                               fp16=config['G_fp16'])
    train = train_fns_ns['GAN_training_function'](G, D, GD, z_, y_, ema, state_dict, config)

    gen = torch.Generator().manual_seed(args.seed + 1)
    start = time.perf_counter()
    first = None
    for _ in range(args.steps):
        x = torch.rand(D_batch_size, 3, RESOLUTION, RESOLUTION, generator=gen) * 2 - 1
        y = torch.zeros(D_batch_size, dtype=torch.int64)
        # train.py's loop body
        state_dict['itr'] += 1
        G.train()
        D.train()
        G_ema.train()
        metrics = train(x, y)
        if first is None:
            first = time.perf_counter() - start
    seconds = time.perf_counter() - start
    for key, value in metrics.items():
        assert value == value, 'NaN %s' % key
    images = config['batch_size'] * config['num_D_steps'] * args.steps
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print('peer_step: attention=%s steps=%d batch=%d d_steps=%d seconds=%.3f images_per_s=%.2f '
          'first_step_s=%.3f peak_rss_mib=%.1f threads=%d G_params=%d D_params=%d G_loss=%.4f' % (
              args.attention, args.steps, config['batch_size'], config['num_D_steps'], seconds,
              images / seconds, first or 0.0, peak_mib, torch.get_num_threads(),
              sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters()),
              metrics['G_loss']))


if __name__ == '__main__':
    main()
