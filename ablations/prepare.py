"""python -m ablations.prepare: prepare a dataset once (select, split and check the images, write the label lists).

examples:
    python -m ablations.prepare caltech16 --source PATH/TO/101_ObjectCategories.tar.gz
    python -m ablations.prepare caltech16                       # downloads caltech-101.zip first
    python -m ablations.prepare fashion_mnist --source PATH/TO/IDX/FOLDER

`python -m ablations.prepare DATASET --help` lists each dataset's options.
"""
from __future__ import annotations

import sys

from ablations import cli
from ablations.cli import main_guard, quiet_paddle_logs
from ablations.console import Ticker


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m ablations.prepare", description=__doc__)
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET", help="the dataset to prepare")
    caltech = sub.add_parser(
        "caltech16",
        help="the 16 largest Caltech-101 categories, split 70/15/15",
        description="Select Caltech-16 from Caltech-101, split it 70/15/15 per class with a fixed seed, check\n"
                    "every image decodes, and write images/, Train.txt, Eval.txt, Test.txt, labels.txt and\n"
                    "stats.json into --out (all or nothing). Re-running reproduces the lists byte for byte.")
    caltech.add_argument("--source", default=None, metavar="PATH",
                         help="caltech-101.zip, 101_ObjectCategories.tar.gz or the extracted 101_ObjectCategories "
                              "folder; default: download the official caltech-101.zip into data/downloads/")
    caltech.add_argument("--out", default="data/caltech16", metavar="DIR", help="folder for the images and label lists")
    caltech.add_argument("--no-download", action="store_true", help="fail instead of downloading when --source is absent")
    fmnist = sub.add_parser(
        "fashion_mnist",
        help="Fashion-MNIST's four IDX files",
        description="Check and copy (or download) Fashion-MNIST's four IDX .gz files into --out.")
    fmnist.add_argument("--source", default=None, metavar="DIR",
                        help="folder holding train-images-idx3-ubyte.gz and the other three files; default: "
                             "download them from paddle's mirror")
    fmnist.add_argument("--out", default="data/fashion_mnist", metavar="DIR", help="folder for the IDX files")
    fmnist.add_argument("--no-download", action="store_true", help="fail instead of downloading when --source is absent")
    return parser


@main_guard
def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    quiet_paddle_logs()
    from paddle_cnns.data import prepare_caltech16, prepare_fashion_mnist

    if args.dataset == "caltech16":
        ticker = Ticker()
        try:
            summary = prepare_caltech16(args.source, args.out, download=not args.no_download, progress=ticker)
        finally:
            ticker.close()
        print(caltech_report(summary))
    else:
        summary = prepare_fashion_mnist(args.source, args.out, download=not args.no_download)
        print(f"Fashion-MNIST in {summary['out_dir']}: {summary['train_images']} train and "
              f"{summary['test_images']} test images")
    return summary


def caltech_report(s: dict) -> str:
    skipped = ", ".join(s["skipped_files"]) or "none"
    lines = [
        f"Caltech-16 prepared in {s['out_dir']} from {s['source']} ({s['source_kind']}) in {s['seconds']} s",
        f"source: {s['source_categories']} categories, {s['source_images']} images, "
        f"{s['grayscale_source']} grayscale; skipped {len(s['skipped_files'])} non-image file(s): {skipped}",
        "classes (id order): " + ", ".join(f"{c} ({s['class_counts'][c]})" for c in s["classes"]),
        f"images: {s['images']} = train {s['splits']['train']} + eval {s['splits']['eval']} + "
        f"test {s['splits']['test']}; {s['grayscale_selected']} grayscale, converted to RGB",
        f"train mean {s['mean']} std {s['std']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
