"""python -m ablations.summary NAME: output shape, parameters and MACs per block, as the d2l chapters print them.

examples:
    python -m ablations.summary all_tricks --image-size 32
    python -m ablations.summary googlenet --image-size 96 --in-channels 1 --num-classes 10
"""
from __future__ import annotations

import sys

from . import cli


from paddle_cnns import Tricks, list_models  # noqa: E402
from paddle_cnns.summary import Summary, summary  # noqa: E402


def format_summary(s: Summary) -> str:
    """The table as text: one row per block, then totals (MACs: multiply-accumulates)."""
    rows = [("block", "output shape", "params", "MACs")]
    rows += [(b.name, " x ".join(map(str, b.output_shape)), f"{b.params:,}", f"{b.macs:,}") for b in s.blocks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    out = [f"{s.model} at {s.image_size} x {s.image_size} px, {s.in_channels} input channel"
           f"{'s' if s.in_channels > 1 else ''}, {s.num_classes} classes",
           line(rows[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[1:]]
    block_params = sum(b.params for b in s.blocks)
    out += ["",
            f"parameters: {s.params:,}" + (f" (of which {s.params - block_params:,} in train-only auxiliary heads)"
                                           if s.params != block_params else ""),
            f"MACs per image: {s.macs:,} multiply-accumulates of convs and linear layers "
            f"({s.macs / 1e9:.3f} G; FLOPs = 2 x MACs = {2 * s.macs / 1e9:.3f} G)",
            f"model size: {s.size_mb:.1f} MB of float32 weights"]
    return "\n".join(out)


def build_parser() -> cli.Parser:
    p = cli.Parser(prog="python -m ablations.summary", description=__doc__)
    p.add_argument("name", help="a model or trick variant: " + ", ".join(list_models())
                   + f"; or an ad-hoc trick set tricks-a+b (tricks: {', '.join(Tricks.names())})")
    p.add_argument("--image-size", type=int, default=224, metavar="PX", help="input height and width")
    p.add_argument("--in-channels", type=int, default=3, metavar="C", help="3 for RGB, 1 for grayscale")
    p.add_argument("--num-classes", type=int, default=16, metavar="N", help="outputs of the last layer")
    return p


@cli.main_guard
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    print(format_summary(summary(args.name, args.image_size, args.in_channels, args.num_classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
