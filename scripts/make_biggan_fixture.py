#!/usr/bin/env python3
"""Makes the BigGAN-PyTorch fixture of `longgan import biggan-pytorch` (issue 30).

What it makes, under OUT (default tests/fixtures/biggan), one folder per model:

  res128_gattn64/   resolution 128, G attention at 64x64, D attention at 32x32
  res256_gattn128/  resolution 256, G attention at 128x128 (16,384 queries), D attention at 64x64
  res32_optim/      resolution 32, G attention at 32x32, no D attention, after OPTIM_STEPS
                    training steps by BigGAN-PyTorch's optimizers: also G_optim.pth, D_optim.pth

Each folder holds, written by `torch.save`:
  G.pth, D.pth, G_ema.pth   the state dicts, as BigGAN-PyTorch's utils.save_weights writes them.
                            G_ema.pth is a byte copy of G.pth (train.py's EMA is a copy of G until
                            ema_start; one blob in git).
  state_dict.pth            the counters and the config dict, as utils.save_weights writes it (the
                            config holds nn.ReLU objects under G_activation/D_activation, as train.py
                            puts them there: a reader must cope with them)
  z.pth      float32 [N, G.dim_z]   fixed latents (N = 4 at 128, 2 at 256)
  y.pth      int64 [N]              fixed classes
  G_images.pth  float32 [N, 3, R, R]  G.eval()(z, G.shared(y)), BigGAN-PyTorch's images
  D_logits.pth  float32 [N, 1]        D.eval()(G_images, y), BigGAN-PyTorch's logits
BigGAN-PyTorch's four files (G, G_ema, D, state_dict) are in torch.save's *legacy* format (torch
< 1.6, not a zip; the format of BigGAN-PyTorch's 2019 releases) in res128_gattn64 and in the zip
format (torch >= 1.6) in res256_gattn128, so that the importer's reader of both is tested. The
other files are zip files in both.
  G_optim.pth, D_optim.pth (res32_optim only)  G.optim.state_dict(), D.optim.state_dict() as
               utils.save_weights writes them, after OPTIM_STEPS steps of train_fns'
               GAN_training_function's recipe (hinge loss from BigGAN-PyTorch's losses.py, through its
               G_D; random "real" images). G_optim.pth is torch 2's (zip, each 'step' a tensor);
               D_optim.pth has the legacy format with each 'step' a Python int, as torch < 1.12 wrote
               it (BigGAN-PyTorch's 2019 files).
  optim_expected.json (res32_optim only)  per network and BigGAN-PyTorch parameter name (from
               named_parameters(), not from the files' order): the Adam step, sum and sum of |x| of
               exp_avg and exp_avg_sq, and of the next update divided by lr when every gradient
               equals its parameter (torch.optim.Adam continuing from the saved state); the
               param_groups' lr, betas and eps
  flags.json   the train.py flags used, the derived values (G.dim_z after the hierarchical
               split, z_chunk_size), the versions, and each file's shape(s) and sha256

How the models are made: BigGAN-PyTorch's own BigGAN.py and layers.py build G and D from the
config dict train.py would build from the listed flags (its own utils.prepare_parser, read out of
its utils.py with `ast` so that utils.py itself, which imports torchvision and h5py-backed
datasets, is not imported; nothing is stubbed). Weights are initialised by its init_weights
(normal(0, 0.02), its N02 flag; see FIXTURES) under fixed seeds; then forward passes in train
mode on random latents (WARMUP of G, D_WARMUP of D) make the batch-norm running statistics and
the spectral-norm u and sv buffers non-trivial (u is deliberately left unconverged, so that an
importer that evaluates the spectral norm differently from BigGAN-PyTorch's eval mode fails the
test). Parameters that the
init leaves at a constant (the attention gammas at 0, the output batch norm's gain at 1 and bias
at 0) are set from a seeded generator, so that each of them matters to the outputs.

How to run it (not run by CI; the fixture it makes is committed):

  git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/biggan-pytorch   # fetched for the purpose
  /root/.cache/longgan/venv/bin/python scripts/make_biggan_fixture.py /tmp/biggan-pytorch

BigGAN-PyTorch (MIT licence) is fetched for the purpose and never vendored: no file of it is
copied into this repository; this script only imports BigGAN.py and layers.py from the checkout
given as its argument. Made with its commit 98459431a5d618d644d54cd1e9fceb1e5045648d (recorded
in flags.json with the torch version). Runs on CPU in under a minute and 2 GB of memory (the
dense attention of the 256 model at 128x128 holds [N, 16384, 4096] matrices). The zip files it
writes are byte-identical from run to run; the legacy ones are not (their storage keys are
object ids) though their contents are.

After writing, it checks itself: fresh models loaded (strict) from the written files reproduce
G_images and D_logits bit-exactly, and G_ema.pth holds exactly G.pth's tensors.
"""
import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys

import torch
import torch.nn as nn

CLASSES = [0, 3, 1, 4]  # the first N of them
# Train-mode forward passes before saving: G's batch-norm running statistics (momentum 0.1) settle
# in WARMUP passes (0.9^40 = 1.5% of the initial ones left), as in a trained checkpoint, where
# they make the conditional batch norm's eps visible in the images. D (no batch norm) runs in the
# last D_WARMUP of them only, so that its spectral norms' u stay a few power iterations from
# converged (G's, Gaussian, are still far enough from it after 40; measured in
# docs/BIGGAN_IMPORT.md, "What the fixture can tell apart").
WARMUP = 40
D_WARMUP = 3
# Training steps (one D step, then one G step, as GAN_training_function with num_D_steps 1) of the
# fixtures with optimizer files: a few, so that the Adam moments are not just the first gradient.
OPTIM_STEPS = 3

# name -> train.py flags, seed, N (the batch of fixed latents) and the format of BigGAN-PyTorch's
# files. Default-style flags as BigGAN-PyTorch's launch_BigGAN_bs256x8.sh (hier, shared embedding,
# inplace ReLU, SN_eps 1e-6), with these changes:
# - init N02 (its normal(0, 0.02) init) instead of ortho. An orthogonal weight has all singular
#   values 1, so every spectral norm would divide by ~1 whatever u holds, and the fixture could not
#   tell a right spectral-norm evaluation from a wrong one (or from none); Gaussian weights have
#   spread singular values, as trained weights do.
# - G_ch = D_ch = 4: the smallest width whose attention blocks have C/8 >= 1 channels where G
#   attends (2ch channels at G's 64 resp. 128) and where D attends (2ch channels at D's 32 in the
#   128 model, at D's 64 in the 256 model; D's 64 in the 128 model has 1ch = 4 channels, C/8 = 0,
#   hence D_attn 32 there).
# - shared_dim 16 instead of 128 (the conditional batch norms' linears [C, shared_dim + z_chunk]
#   would otherwise be 40% of G), dim_z 24 instead of 120 (the input linear [16ch*16, z_chunk]).
#   24 splits evenly into the 6 slots of the 128 model (chunks of 4) and not into the 7 of the 256
#   model, where BigGAN-PyTorch silently uses 7 * 3 = 21 (G.dim_z), as it does with the default
#   120 (7 * 17 = 119): a trap the fixture keeps.
# - N = 2 at 256 (four 256x256 fp32 images alone are 3 MB).
# - BN_eps 1e-4 in the 256 model, as the TF Hub ports (BigGAN-PyTorch's default 1e-5 in the other).
COMMON = ['--G_shared', '--hier', '--dim_z', '24', '--shared_dim', '16',
          '--G_ch', '4', '--D_ch', '4',
          '--G_nl', 'inplace_relu', '--D_nl', 'inplace_relu',
          '--G_init', 'N02', '--D_init', 'N02',
          '--SN_eps', '1e-6', '--adam_eps', '1e-6', '--G_lr', '1e-4', '--D_lr', '4e-4',
          '--num_D_steps', '1', '--G_eval_mode', '--ema', '--use_ema', '--ema_start', '20000']
FIXTURES = {
    'res128_gattn64': dict(resolution=128, n_classes=5, seed=0, N=4, legacy=True,
                           flags=COMMON + ['--G_attn', '64', '--D_attn', '32', '--BN_eps', '1e-5']),
    'res256_gattn128': dict(resolution=256, n_classes=5, seed=1, N=2, legacy=False,
                            flags=COMMON + ['--G_attn', '128', '--D_attn', '64', '--BN_eps', '1e-4']),
    # Small (G_ch 4 at 32: 16 channels where G attends), for the optimizer files. No D attention:
    # BigGAN's D at 32 labels all its blocks 16, and LongGAN attends after one block only.
    'res32_optim': dict(resolution=32, n_classes=5, seed=2, N=2, legacy=False, optim=True,
                        flags=COMMON + ['--G_attn', '32', '--D_attn', '0', '--BN_eps', '1e-5']),
}


def load_from_utils(biggan_dir, names):
    """Functions and assignments `names` of BigGAN-PyTorch's utils.py, without importing it."""
    path = os.path.join(biggan_dir, 'utils.py')
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    keep = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            keep.append(node)
        elif isinstance(node, ast.Assign) and any(getattr(t, 'id', None) in names for t in node.targets):
            keep.append(node)
    namespace = {'nn': nn, 'ArgumentParser': argparse.ArgumentParser}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, 'exec'), namespace)
    missing = [n for n in names if n not in namespace]
    if missing:
        sys.exit('utils.py of %s lacks %s' % (biggan_dir, missing))
    return namespace


def train_config(utils_ns, flags, resolution, n_classes):
    """The config dict train.py's run() builds from `flags` (dataset-derived fields given)."""
    config = vars(utils_ns['prepare_parser']().parse_args(flags))
    config['resolution'] = resolution
    config['n_classes'] = n_classes
    config['G_activation'] = utils_ns['activation_dict'][config['G_nl']]
    config['D_activation'] = utils_ns['activation_dict'][config['D_nl']]
    return config


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def describe(value):
    if isinstance(value, torch.Tensor):
        return {'shape': list(value.shape), 'dtype': str(value.dtype).replace('torch.', '')}
    return {'keys': len(value)}


def make(name, spec, biggan, losses, utils_ns, out_root, commit):
    out = os.path.join(out_root, name)
    N = spec['N']
    os.makedirs(out, exist_ok=True)
    config = train_config(utils_ns, spec['flags'], spec['resolution'], spec['n_classes'])
    torch.manual_seed(spec['seed'])
    G = biggan.Generator(**config)
    D = biggan.Discriminator(**config)
    G_ema = biggan.Generator(**{**config, 'skip_init': True, 'no_optim': True})

    gen = torch.Generator().manual_seed(1000 + spec['seed'])
    with torch.no_grad():
        # Constants of the init that would hide a mapping error: attention gammas (0), the output
        # batch norm's gain (1) and bias (0).
        for model in (G, D):
            for module in model.modules():
                if isinstance(module, biggan.layers.Attention):
                    module.gamma.copy_(0.5 + torch.rand((), generator=gen))
        G.output_layer[0].gain.copy_(1 + 0.2 * torch.randn(G.output_layer[0].gain.shape, generator=gen))
        G.output_layer[0].bias.copy_(0.1 * torch.randn(G.output_layer[0].bias.shape, generator=gen))
        # Train-mode passes: batch-norm running statistics (momentum 0.1) and one power iteration
        # per pass on every spectral norm (u, sv updated), as train.py's steps do.
        G.train()
        D.train()
        for step in range(WARMUP):
            z = torch.randn(N, G.dim_z, generator=gen)
            y = torch.randint(0, spec['n_classes'], (N,), generator=gen)
            images = G(z, G.shared(y))
            if step >= WARMUP - D_WARMUP:
                D(images, y)
    itr = WARMUP
    if spec.get('optim'):
        train_steps(G, D, biggan, losses, spec, gen)
        itr += OPTIM_STEPS
    # train.py's EMA starts as a copy of G (utils.ema.__init__ copies every state-dict entry).
    G_ema.load_state_dict(G.state_dict())

    state_dict = {'itr': itr, 'epoch': 0, 'save_num': 0, 'save_best_num': 0,
                  'best_IS': 0, 'best_FID': 999999, 'config': config}
    # As utils.save_weights (its optimizer files G_optim.pth / D_optim.pth only in the optim fixture:
    # size).
    zip_format = not spec['legacy']
    torch.save(G.state_dict(), os.path.join(out, 'G.pth'), _use_new_zipfile_serialization=zip_format)
    torch.save(D.state_dict(), os.path.join(out, 'D.pth'), _use_new_zipfile_serialization=zip_format)
    torch.save(state_dict, os.path.join(out, 'state_dict.pth'), _use_new_zipfile_serialization=zip_format)
    # G_ema holds G's tensors (checked below); saved as a byte copy of G.pth: one blob in git.
    shutil.copyfile(os.path.join(out, 'G.pth'), os.path.join(out, 'G_ema.pth'))
    if spec.get('optim'):
        save_optimizers(G, D, out)

    z = torch.randn(N, G.dim_z, generator=gen)
    y = torch.tensor(CLASSES[:N], dtype=torch.int64)
    G.eval()
    D.eval()
    with torch.no_grad():
        images = G(z, G.shared(y))
        logits = D(images, y)
    tensors = {'z.pth': z, 'y.pth': y, 'G_images.pth': images, 'D_logits.pth': logits}
    for file, tensor in tensors.items():
        torch.save(tensor, os.path.join(out, file))

    # Self-check: fresh models built from the config and loaded strictly from the files give the
    # same outputs bit for bit; G_ema.pth holds G.pth's tensors.
    def load(path):
        return torch.load(path, map_location='cpu', weights_only=False)
    torch.manual_seed(12345)
    G2 = biggan.Generator(**{**config, 'skip_init': True, 'no_optim': True})
    D2 = biggan.Discriminator(**{**config, 'skip_init': True})
    G2.load_state_dict(load(os.path.join(out, 'G.pth')), strict=True)
    D2.load_state_dict(load(os.path.join(out, 'D.pth')), strict=True)
    G2.eval()
    D2.eval()
    with torch.no_grad():
        images2 = G2(load(os.path.join(out, 'z.pth')), G2.shared(load(os.path.join(out, 'y.pth'))))
        logits2 = D2(load(os.path.join(out, 'G_images.pth')), load(os.path.join(out, 'y.pth')))
    assert torch.equal(images2, load(os.path.join(out, 'G_images.pth'))), name + ': G reload differs'
    assert torch.equal(logits2, load(os.path.join(out, 'D_logits.pth'))), name + ': D reload differs'
    g_sd, ema_sd = load(os.path.join(out, 'G.pth')), G_ema.state_dict()
    assert list(g_sd) == list(ema_sd) and all(torch.equal(g_sd[k], ema_sd[k]) for k in g_sd)

    flags = {
        'name': name,
        'train_py_flags': spec['flags'],
        'dataset_derived': {'resolution': spec['resolution'], 'n_classes': spec['n_classes']},
        'seed': spec['seed'],
        'warmup_train_passes': {'G': WARMUP, 'D': D_WARMUP},
        'N': N,
        'classes': CLASSES[:N],
        'derived': {'G.dim_z': G.dim_z, 'G.z_chunk_size': G.z_chunk_size, 'G.num_slots': G.num_slots,
                    'G.shared_dim': G.shared_dim},
        'config': {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool, type(None)))},
        'format_of_G_D_G_ema_state_dict': 'legacy' if spec['legacy'] else 'zip',
        'biggan_pytorch_commit': commit,
        'torch': torch.__version__,
        'image_stats': {'min': images.min().item(), 'max': images.max().item(),
                        'mean': images.mean().item(), 'std': images.std().item(),
                        'fraction_abs_gt_0.99': (images.abs() > 0.99).float().mean().item()},
        'logits': logits.flatten().tolist(),
        'files': {},
    }
    contents = {'G.pth': g_sd, 'D.pth': D.state_dict(), 'G_ema.pth': ema_sd,
                'state_dict.pth': state_dict, **tensors}
    if spec.get('optim'):
        contents['G_optim.pth'] = G.optim.state_dict()
        contents['D_optim.pth'] = D.optim.state_dict()
    for file in sorted(contents):
        path = os.path.join(out, file)
        flags['files'][file] = {**describe(contents[file]), 'bytes': os.path.getsize(path),
                                'sha256': sha256(path)}
    with open(os.path.join(out, 'flags.json'), 'w') as f:
        json.dump(flags, f, indent=1, sort_keys=True)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print('%s: %d bytes in %s; images in [%.3f, %.3f], std %.3f; logits %s' % (
        name, total, out, images.min(), images.max(), images.std(), logits.flatten().tolist()))


def train_steps(G, D, biggan, losses, spec, gen):
    """OPTIM_STEPS steps of train_fns.GAN_training_function's recipe (num_D_steps 1, no
    accumulation, toggle_grads): a D step on fake and random 'real' images, then a G step."""
    GD = biggan.G_D(G, D)
    N, R, n_classes = spec['N'], spec['resolution'], spec['n_classes']
    G.train()
    D.train()
    for _ in range(OPTIM_STEPS):
        z = torch.randn(N, G.dim_z, generator=gen)
        y = torch.randint(0, n_classes, (N,), generator=gen)
        x = torch.rand(N, 3, R, R, generator=gen) * 2 - 1
        dy = torch.randint(0, n_classes, (N,), generator=gen)
        for p in D.parameters():
            p.requires_grad = True
        for p in G.parameters():
            p.requires_grad = False
        D.optim.zero_grad()
        D_fake, D_real = GD(z, y, x, dy, train_G=False)
        loss_real, loss_fake = losses.discriminator_loss(D_fake, D_real)
        (loss_real + loss_fake).backward()
        D.optim.step()
        for p in D.parameters():
            p.requires_grad = False
        for p in G.parameters():
            p.requires_grad = True
        G.optim.zero_grad()
        z = torch.randn(N, G.dim_z, generator=gen)
        y = torch.randint(0, n_classes, (N,), generator=gen)
        losses.generator_loss(GD(z, y, train_G=True)).backward()
        G.optim.step()
    for p in list(G.parameters()) + list(D.parameters()):
        p.requires_grad = True


def optimizer_expectations(model):
    """What an importer must make of model.optim's state, keyed by BigGAN-PyTorch's parameter names
    (named_parameters(): independent of any reading of the files' order)."""
    optim = model.optim
    group = optim.param_groups[0]
    names = {id(p): n for n, p in model.named_parameters()}
    # A copy: state_dict() hands out the live state tensors, which the step below would update.
    saved = copy.deepcopy(optim.state_dict())
    params = [p.detach().clone().requires_grad_() for p in group['params']]
    # torch.optim.Adam continuing from the saved state with gradient = parameter.
    follow = torch.optim.Adam(params, lr=group['lr'], betas=group['betas'], eps=group['eps'], weight_decay=0)
    follow.load_state_dict(copy.deepcopy(saved))
    for p in params:
        p.grad = p.detach().clone()
    before = [p.detach().clone() for p in params]
    follow.step()

    def sums(tensor):
        return [tensor.double().sum().item(), tensor.double().abs().sum().item()]
    result = {'lr': group['lr'], 'betas': list(group['betas']), 'eps': group['eps'], 'params': {}}
    for index, (p, old, new) in enumerate(zip(group['params'], before, params)):
        state = saved['state'][saved['param_groups'][0]['params'][index]]
        result['params'][names[id(p)]] = {
            'step': int(state['step']),
            'exp_avg': sums(state['exp_avg']),
            'exp_avg_sq': sums(state['exp_avg_sq']),
            'update': sums((new.detach() - old) / group['lr']),
        }
    return result


def save_optimizers(G, D, out):
    """G_optim.pth (torch 2: zip, tensor steps), D_optim.pth (legacy format, int steps as torch < 1.12
    wrote them) and optim_expected.json."""
    torch.save(G.optim.state_dict(), os.path.join(out, 'G_optim.pth'))
    d_state = D.optim.state_dict()
    d_state['state'] = {k: {**v, 'step': int(v['step'])} for k, v in d_state['state'].items()}
    torch.save(d_state, os.path.join(out, 'D_optim.pth'), _use_new_zipfile_serialization=False)
    expected = {'G': optimizer_expectations(G), 'D': optimizer_expectations(D)}
    with open(os.path.join(out, 'optim_expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write('\n')


def checkout_and_commit(biggan_dir, commit=None):
    """The absolute path of a BigGAN-PyTorch checkout (exits unless it holds BigGAN.py) and its commit:
    `commit` when given, else git rev-parse HEAD there, else a note that it is not a git checkout."""
    biggan_dir = os.path.abspath(biggan_dir)
    if not os.path.isfile(os.path.join(biggan_dir, 'BigGAN.py')):
        sys.exit('%s: no BigGAN.py; give a checkout of BigGAN-PyTorch' % biggan_dir)
    try:
        commit = commit or subprocess.run(['git', '-C', biggan_dir, 'rev-parse', 'HEAD'], capture_output=True,
                                          text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = 'unknown (not a git checkout)'
    return biggan_dir, commit


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('biggan_dir', help='a checkout of github.com/ajbrock/BigGAN-PyTorch')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      '..', 'tests', 'fixtures', 'biggan'))
    parser.add_argument('--only', choices=sorted(FIXTURES), action='append')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--commit', help='the checkout\'s commit, recorded in flags.json where it is not a '
                        'git checkout (default: git rev-parse HEAD in it)')
    args = parser.parse_args()

    biggan_dir, commit = checkout_and_commit(args.biggan_dir, args.commit)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    sys.path.insert(0, biggan_dir)
    import BigGAN as biggan  # noqa: E402 (BigGAN-PyTorch's, from the checkout; imports layers, sync_batchnorm)
    import losses  # noqa: E402 (BigGAN-PyTorch's hinge losses)
    utils_ns = load_from_utils(biggan_dir, ['prepare_parser', 'activation_dict'])
    out_root = os.path.abspath(args.out)
    for name in args.only or sorted(FIXTURES):
        make(name, FIXTURES[name], biggan, losses, utils_ns, out_root, commit)


if __name__ == '__main__':
    main()
