"""Continue training tinyae's seed model with PyTorch's DistributedDataParallel, then bring it back.

    torchrun --standalone --nproc_per_node 2 examples/torchrun_continue.py --limit 2000 --out runs/ddp

1. rank 0 exports the seed model (``--ckpt`` CKPT, or a new one) as a PyTorch state dict:
   OUT/start.safetensors (``tinyae.export.to_safetensors``);
2. every rank builds the equivalent module (``tinyae.export.to_torch``); rank 0 loads that
   file into it with ``strict=True`` and ``DistributedDataParallel`` hands its weights to the
   others; each trains on its share of the images (gloo on CPUs, NCCL on GPUs: the same
   script runs on one machine or many, unchanged);
3. rank 0 saves the trained state dict (OUT/continued.safetensors), reports PyTorch's test
   loss, reads the file back into tinyae (``tinyae.export.from_safetensors``), reports
   tinyae's loss on the same images (the two agree), and writes OUT/continued.npz for
   ``tinyae explore``, ``tinyae info`` and the other commands.

Needs PyTorch (never a dependency of tinyae) and ``pip install 'tinyae[export]'``; MNIST is
read from TINYAE_DATA_DIR (or downloaded) by ``tinyae.data.load_mnist``.
"""
import argparse
import os
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import tinyae as ta
from tinyae.io.checkpoint import atomic_write


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", help="an autoencoder's checkpoint to continue, on MSE alone "
                   "(default: a new seed model)")
    p.add_argument("--limit", type=int, default=2000,
                   help="the first N training images, and as many test images (default 2000)")
    p.add_argument("--epochs", type=int, default=1, help="epochs (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="per process (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    p.add_argument("--out", default="runs/torchrun", help="output folder (default runs/torchrun)")
    p.add_argument("--force", action="store_true", help="replace the files of an earlier run in --out")
    return p.parse_args()


OUTPUTS = ("start.safetensors", "continued.safetensors", "continued.npz")


def check_out(args):
    """Refuse, before any work, an --out that holds an earlier run's files (unless --force)."""
    taken = [name for name in OUTPUTS if (Path(args.out) / name).exists()]
    if taken and not args.force:
        raise SystemExit(f"{args.out} holds {', '.join(taken)} from an earlier run; choose "
                         "another --out, or add --force to replace them")


def start(args):
    """(rank, world size, device): one process per CPU or GPU, as torchrun launched it."""
    gpus = torch.cuda.is_available()
    dist.init_process_group("nccl" if gpus else "gloo")
    rank = dist.get_rank()
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if gpus else "cpu")
    return rank, dist.get_world_size(), device


def seed_model(args):
    """The tinyae model to continue: the checkpoint's, or the seed model drawn with seed 0."""
    if not args.ckpt:
        return ta.dense_autoencoder(rng=np.random.default_rng(0))
    model = ta.load(args.ckpt)
    if isinstance(model, ta.VariationalAutoencoder):
        raise SystemExit(f"{args.ckpt} holds a VAE, whose loss is the negative ELBO, not the "
                         "MSE this example trains; give an autoencoder's checkpoint")
    return model


def train(module, X, args, rank, world, device):
    """``args.epochs`` of Adam on MSE, each process on its share of X; the mean loss per epoch."""
    data = TensorDataset(torch.from_numpy(X))
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    batches = DataLoader(data, batch_size=args.batch_size, sampler=sampler)
    ddp = DistributedDataParallel(module)     # averages the gradients across the processes
    optimizer = torch.optim.Adam(ddp.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        total = torch.zeros(2, dtype=torch.float64, device=device)    # loss sum, images
        for (x,) in batches:
            x = x.to(device)
            loss = torch.nn.functional.mse_loss(ddp(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += torch.tensor([loss.item() * len(x), len(x)], dtype=torch.float64,
                                  device=device)
        dist.all_reduce(total)                # every process's share of the epoch
        if rank == 0:
            print(f"epoch {epoch}: train MSE {total[0].item() / total[1].item():.6f} "
                  f"({world} processes)", flush=True)


def main():
    args = parse()
    check_out(args)
    rank, world, device = start(args)
    out = Path(args.out)
    template = seed_model(args)
    module = ta.export.to_torch(template)
    if rank == 0:                             # the other ranks get these weights from DDP,
        first = out / "start.safetensors"     # which broadcasts rank 0's at its start
        out.mkdir(parents=True, exist_ok=True)
        ta.export.to_safetensors(template, first, force=args.force)
        module.load_state_dict(safetensors.torch.load_file(first), strict=True)
    module = module.to(device)
    X = ta.data.load_mnist("train", progress=False)[0][:args.limit]
    train(module, X, args, rank, world, device)

    if rank == 0:
        Xt = ta.data.load_mnist("test", progress=False)[0][:args.limit]
        trained = out / "continued.safetensors"
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        atomic_write(trained, lambda f: f.write(safetensors.torch.save(state)))
        module.eval()
        with torch.no_grad():
            x = torch.from_numpy(Xt).to(device)
            torch_loss = torch.nn.functional.mse_loss(module(x), x).item()
        print(f"PyTorch: test MSE {torch_loss:.8f} on {len(Xt):,} images", flush=True)

        model = ta.export.from_safetensors(trained, like=template)
        tinyae_loss = ta.MSE().forward(model.forward(Xt), Xt)
        print(f"tinyae:  test MSE {tinyae_loss:.8f} on {len(Xt):,} images (imported from "
              f"{trained})", flush=True)
        ckpt = out / "continued.npz"
        ta.save(model, ckpt, extra={"imported": {"state": trained.name}})
        print(f"wrote {ckpt}: tinyae explore {ckpt} -o explore.html draws its latent map",
              flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
