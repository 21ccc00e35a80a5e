#!/usr/bin/env python3
"""Checks `longgan export biggan-pytorch` against BigGAN-PyTorch itself (issue 30).

What it does, for each fixture folder of tests/fixtures/biggan (res128_gattn64, res256_gattn128, res32_optim;
made by scripts/make_biggan_fixture.py):

  1. longgan import biggan-pytorch FIXTURE --out TMP/NAME/run
  2. longgan export biggan-pytorch TMP/NAME/run --out TMP/NAME/exported
  3. builds BigGAN-PyTorch's own Generator and Discriminator (BigGAN.py of the checkout given)
     from the fixture's config (the train.py flags of its flags.json, parsed by train.py's parser
     as make_biggan_fixture.py does; checked against the config in its state_dict.pth), and loads
     the exported G.pth, G_ema.pth and D.pth into fresh models with
     load_state_dict(torch.load(FILE), strict=True), torch.load's default (weights_only) loading:
     every key present, none extra, every shape right, and nothing but tensors in the files;
  4. checks that G.eval()(z, G.shared(y)) and G_ema's equal the fixture's G_images.pth within
     1e-4 max |difference|, and D.eval()(G_images, y) equals D_logits.pth within 1e-4 relative
     (max |difference| / max |logit|), and prints the measured differences. It also prints how
     many exported tensors equal the fixture's bit for bit (all but the sv0 buffers, which export
     writes as the sigma BigGAN's eval computes and BigGAN never reads back).

Why: the C++ test (tests/app/biggan_import_test.cpp) checks the exported files against the
fixture's tensors, but only BigGAN-PyTorch's own code can say that its load_state_dict(strict=True)
accepts them and that the loaded models compute the fixture's outputs; CI has no BigGAN-PyTorch
checkout, so this is the manual end-to-end check.

How to run it (not run by CI; uses longgan as built, it builds nothing):

  git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/biggan-pytorch   # fetched for the purpose
  /root/.cache/longgan/venv/bin/python scripts/check_biggan_export.py /tmp/biggan-pytorch \\
      [--longgan build/bin/longgan] [--tmp DIR] [--only res128_gattn64]

BigGAN-PyTorch is imported from the checkout given, never vendored (as make_biggan_fixture.py,
whose helpers it imports). One thread, a few seconds and ~2 GB of memory (the dense attention of
the 256 fixture at 128x128). Exit status 0 when every check passes, 1 otherwise. TMP (default: a
new temporary directory, removed afterwards unless --keep) must not hold the run folders already.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NAMES = ['res128_gattn64', 'res256_gattn128', 'res32_optim']
G_TOL = 1e-4  # max |difference| of images in [-1, 1]
D_TOL = 1e-4  # max |difference| / max |logit|


def import_fixture_module():
    """scripts/make_biggan_fixture.py as a module (its load_from_utils and train_config)."""
    path = os.path.join(HERE, 'make_biggan_fixture.py')
    spec = importlib.util.spec_from_file_location('make_biggan_fixture', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(cmd, env):
    print('$ ' + ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        print('  | ' + line)
    if proc.returncode != 0:
        raise RuntimeError('%s exited with %d' % (cmd[0], proc.returncode))


def check_config(config, fixture_dir):
    """The config built from flags.json agrees with state_dict.pth's on every plain value."""
    # state_dict.pth holds nn.ReLU objects in its config (as train.py puts them there), so it needs
    # the full unpickler; it is the fixture's own committed file.
    saved = torch.load(os.path.join(fixture_dir, 'state_dict.pth'), map_location='cpu',
                       weights_only=False)['config']
    plain = (int, float, str, bool, type(None))
    differ = [k for k, v in saved.items() if isinstance(v, plain) and config.get(k) != v]
    if differ:
        raise RuntimeError('flags.json and state_dict.pth disagree on %s' % differ)
    for key in ('G_activation', 'D_activation'):
        if type(config[key]) is not type(saved[key]):
            raise RuntimeError('%s: %r in flags.json\'s config, %r in state_dict.pth' % (
                key, config[key], saved[key]))


def check(name, biggan, fixture_mod, utils_ns, longgan, tmp, env):
    fixture_dir = os.path.join(REPO, 'tests', 'fixtures', 'biggan', name)
    with open(os.path.join(fixture_dir, 'flags.json')) as f:
        flags = json.load(f)
    work = os.path.join(tmp, name)
    os.makedirs(work, exist_ok=True)
    run_dir, exported = os.path.join(work, 'run'), os.path.join(work, 'exported')
    run([longgan, 'import', 'biggan-pytorch', fixture_dir, '--out', run_dir], env)
    run([longgan, 'export', 'biggan-pytorch', run_dir, '--out', exported], env)
    print('  exported: ' + ', '.join('%s (%d bytes)' % (f, os.path.getsize(os.path.join(exported, f)))
                                     for f in sorted(os.listdir(exported))))

    derived = flags['dataset_derived']
    config = fixture_mod.train_config(utils_ns, flags['train_py_flags'], derived['resolution'],
                                      derived['n_classes'])
    check_config(config, fixture_dir)
    config = {**config, 'skip_init': True, 'no_optim': True}

    def fixture(file):  # the fixture's own tensors (zip files of tensors: weights_only loading)
        return torch.load(os.path.join(fixture_dir, file), map_location='cpu')

    failures = []
    models = {}
    for file, make in (('G.pth', biggan.Generator), ('G_ema.pth', biggan.Generator),
                       ('D.pth', biggan.Discriminator)):
        model = make(**config)
        state = torch.load(os.path.join(exported, file))  # default: weights_only=True
        model.load_state_dict(state, strict=True)
        model.eval()
        models[file] = model
        # Against BigGAN-PyTorch's files in the fixture (G_ema.pth there is a copy of G.pth).
        # Legacy-format files (res128) hold storages torch.load's weights_only reader accepts too.
        original = fixture(file)
        same = [k for k in original if torch.equal(original[k], state[k])]
        other = sorted(set(original) - set(same))
        sv_rel = max((((state[k] - original[k]).abs() / original[k].abs()).max().item()
                      for k in other if k.split('.')[-1].startswith('sv')), default=0.0)
        non_sv = [k for k in other if not k.split('.')[-1].startswith('sv')]
        print('  %-10s strict load OK: %d tensors, %d equal the fixture\'s bit for bit; the others: '
              '%d sv buffers (max relative difference %.3g)%s' % (
                  file, len(state), len(same), len(other) - len(non_sv), sv_rel,
                  '' if not non_sv else '; DIFFERING: %s' % non_sv))
        if non_sv:
            failures.append('%s: tensors differ from the fixture\'s: %s' % (file, non_sv))

    z, y = fixture('z.pth'), fixture('y.pth')
    images, logits = fixture('G_images.pth'), fixture('D_logits.pth')
    with torch.no_grad():
        for file in ('G.pth', 'G_ema.pth'):
            G = models[file]
            out = G(z, G.shared(y))
            diff = (out - images).abs().max().item()
            ok = out.shape == images.shape and diff <= G_TOL
            print('  %-10s G.eval()(z, G.shared(y)) vs G_images.pth %s: max |difference| %.3g '
                  '(bit-exact: %s; tolerance %g) %s' % (file, list(images.shape), diff,
                                                         torch.equal(out, images), G_TOL,
                                                         'OK' if ok else 'FAIL'))
            if not ok:
                failures.append('%s images differ by %g' % (file, diff))
        D = models['D.pth']
        out = D(images, y)
        diff = (out - logits).abs().max().item()
        rel = diff / logits.abs().max().item()
        ok = out.shape == logits.shape and rel <= D_TOL
        print('  %-10s D.eval()(G_images, y) vs D_logits.pth %s: max |difference| %.3g, relative '
              '%.3g (bit-exact: %s; tolerance %g) %s' % ('D.pth', list(logits.shape), diff, rel,
                                                          torch.equal(out, logits), D_TOL,
                                                          'OK' if ok else 'FAIL'))
        if not ok:
            failures.append('D logits differ by %g relative' % rel)
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('biggan_dir', help='a checkout of github.com/ajbrock/BigGAN-PyTorch')
    parser.add_argument('--longgan', default=os.path.join(REPO, 'build', 'bin', 'longgan'))
    parser.add_argument('--tmp', help='work directory (default: a new temporary one)')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    parser.add_argument('--only', choices=NAMES, action='append')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()

    biggan_dir = os.path.abspath(args.biggan_dir)
    if not os.path.isfile(os.path.join(biggan_dir, 'BigGAN.py')):
        sys.exit('%s: no BigGAN.py; give a checkout of BigGAN-PyTorch' % biggan_dir)
    longgan = os.path.abspath(args.longgan)
    if not os.access(longgan, os.X_OK):
        sys.exit('%s: not an executable; build longgan first (scripts/build.sh)' % longgan)
    torch.set_num_threads(args.threads)
    env = {**os.environ, 'OMP_NUM_THREADS': str(args.threads), 'MKL_NUM_THREADS': str(args.threads)}

    fixture_mod = import_fixture_module()
    sys.path.insert(0, biggan_dir)
    import BigGAN as biggan  # noqa: E402 (BigGAN-PyTorch's, from the checkout)
    utils_ns = fixture_mod.load_from_utils(biggan_dir, ['prepare_parser', 'activation_dict'])

    tmp = os.path.abspath(args.tmp) if args.tmp else tempfile.mkdtemp(prefix='check_biggan_export.')
    failures = []
    try:
        for name in args.only or NAMES:
            print('== ' + name, flush=True)
            try:
                failures += ['%s: %s' % (name, f) for f in
                             check(name, biggan, fixture_mod, utils_ns, longgan, tmp, env)]
            except Exception as e:  # report it and go on with the next fixture
                failures.append('%s: %s: %s' % (name, type(e).__name__, e))
                print('  ERROR %s: %s' % (type(e).__name__, e))
    finally:
        if args.keep or args.tmp:
            print('work directory kept: ' + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print('torch %s, BigGAN-PyTorch %s' % (torch.__version__, biggan_dir))
    if failures:
        print('FAILED:\n  ' + '\n  '.join(failures))
        sys.exit(1)
    print('all checks passed')


if __name__ == '__main__':
    main()
