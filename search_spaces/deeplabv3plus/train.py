"""``paretonas supernet train deeplabv3plus``: train a DeepLabV3+ supernet on a VOC-format
dataset (sandwich rule, optional in-place distillation), checkpointing every epoch; ``--resume``
continues an interrupted run. The checkpoint is what the space's ``checkpoint`` option loads.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from paretonas_core.compute import ComputeError, from_arguments
from paretonas_core.compute import add_arguments as compute_arguments
from search_spaces.base import SpaceError

#: what ``paretonas ... --help`` shows (the docstring is for developers)
CLI_HELP = (
    "Train a DeepLabV3+ supernet on a VOC-format dataset (sandwich rule, optional "
    "in-place distillation), saving a checkpoint every epoch; --resume continues an "
    "interrupted run."
)


log = logging.getLogger(__name__)

STRUCTURE_ARGS = ("num_classes", "width_mult", "output_stride", "expand_ratios", "aspp_channels",
                  "low_level_channels", "decoder_channels", "resolutions")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="VOC-format dataset root")
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--num-random", type=int, default=2,
                        help="random subnets per step besides the largest and smallest")
    parser.add_argument("--no-distill", action="store_true",
                        help="no in-place distillation from the largest subnet")
    parser.add_argument("--schedule", choices=["sandwich", "progressive", "largest"],
                        default="sandwich",
                        help="subnets per step: sandwich rule, Once-for-All progressive shrinking "
                        "(largest, then elastic depth, expand, widths), or the largest only")
    parser.add_argument("--phase-epochs", type=int, nargs=4, default=None,
                        help="progressive: epochs of its 4 phases (sum = --epochs)")
    parser.add_argument("--crop", type=int, default=None,
                        help="training crop (default: largest resolution)")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None)
    parser.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    parser.add_argument("--init", default=None,
                        help="start from a DeepLabV3+ checkpoint (e.g. VainF's mobilenet one)")
    parser.add_argument("--init-backbone", default=None,
                        help="start the backbone from a torchvision mobilenet_v2 state dict")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    compute_arguments(parser)
    structure = parser.add_argument_group("supernet structure (as the space's options)")
    structure.add_argument("--num-classes", type=int, default=21)
    structure.add_argument("--width-mult", type=float, default=1.0)
    structure.add_argument("--output-stride", type=int, default=16)
    structure.add_argument("--expand-ratios", type=int, nargs="+", default=[3, 4, 6])
    structure.add_argument("--aspp-channels", type=int, default=256)
    structure.add_argument("--low-level-channels", type=int, default=48)
    structure.add_argument("--decoder-channels", type=int, default=256)
    structure.add_argument("--resolutions", type=int, nargs="+", default=[384, 448, 512])


def _positive(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "lr"):
        if getattr(args, name) <= 0:
            raise SpaceError(f"--{name.replace('_', '-')} must be positive")
    if args.batch_size < 2:
        raise SpaceError("--batch-size must be at least 2 (batch norm needs it)")
    if args.num_random < 0:
        raise SpaceError("--num-random must be >= 0")


def run(args: argparse.Namespace) -> dict:
    # imported here so that building the CLI parser does not import torch
    import torch
    from pydantic import ValidationError
    from tqdm import tqdm

    from search_spaces.deeplabv3plus import checkpoint as ckpt
    from search_spaces.deeplabv3plus.data import VOCSegmentation
    from search_spaces.deeplabv3plus.space import DeepLabOptions, DeepLabSpace
    from search_spaces.deeplabv3plus.training import TrainConfig, train_supernet

    _positive(args)
    try:
        compute = from_arguments(args)
    except ComputeError as exc:
        raise SpaceError(str(exc)) from exc
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        options = DeepLabOptions(**{k: getattr(args, k) for k in STRUCTURE_ARGS},
                                 seed=args.seed)
    except ValidationError as exc:
        raise SpaceError("; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )) from exc
    space = DeepLabSpace(options)
    dataset = VOCSegmentation(args.data, "train", num_classes=options.num_classes)
    out = Path(args.out)
    if not (args.resume and out.exists()):
        if args.init:
            path = Path(args.init)
            obj = ckpt.read_checkpoint(path)
            ckpt.load_into(space.supernet, ckpt.state_dict_of(obj, path), path)
            space.supernet.reorder_by_importance()
        elif args.init_backbone:
            path = Path(args.init_backbone)
            state = ckpt.state_dict_of(ckpt.read_checkpoint(path), path)
            space.supernet.load_state_dict(
                ckpt.torchvision_backbone_state(state, space.supernet, path), strict=False
            )
            space.supernet.reorder_by_importance()
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, num_random=args.num_random,
                         distill=not args.no_distill, crop=args.crop, seed=args.seed,
                         max_steps_per_epoch=args.max_steps_per_epoch,
                         schedule=args.schedule, phase_epochs=args.phase_epochs)
    bar = None if args.no_progress else tqdm(desc="supernet", unit="step")

    def progress(step: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.total = total
            bar.n = step
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.refresh()

    try:
        summary = train_supernet(space, dataset, out, config, resume=args.resume,
                                 progress=progress, compute=compute)
    finally:
        if bar is not None:
            bar.close()
    summary["space_options"] = {"checkpoint": str(out), "data_dir": str(args.data),
                                **options.structure().to_dict()}
    return summary


def main(args: argparse.Namespace) -> int:
    try:
        summary = run(args)
    except SpaceError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover - the paretonas CLI is the entry point
    p = argparse.ArgumentParser(prog="python -m search_spaces.deeplabv3plus.train")
    add_arguments(p)
    raise SystemExit(main(p.parse_args()))
