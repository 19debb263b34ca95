"""The `spiralarms` command: predict new images, import a trained model, print the summary.

Exit codes: 0 success (also when some images were skipped), 2 bad input (missing model, no
images, no model card, unsafe or missing model, missing summary file).
Heavy modules (TensorFlow) are imported inside the subcommands, so `--help` and `summary` are quick.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

import pandas as pd

from .variants import VARIANTS

DEFAULT_SUMMARY = Path("results/summary/metrics.csv")
SUMMARY_COLUMNS = ["experiment", "subset", "n", "accuracy", "accuracy_ci_low",
                   "accuracy_ci_high", "macro_f1"]


class UserError(Exception):
    """Bad input on the command line: printed as one message, exit code 2."""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow's first import
    try:
        return args.run(args)
    except UserError as error:
        print(f"spiralarms {args.command}: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spiralarms", description="Spiral-arm number classification of galaxy images.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict", parents=[common],
        help="predict arm numbers for images or folders of images",
        description="Images are preprocessed exactly as in training (model.json gives model "
                    "type, image size and central crop); frame them like the GZ2 424x424 "
                    "cut-outs.")
    predict.add_argument("images", nargs="+", type=Path, help="image files and/or folders")
    predict.add_argument("--model", required=True, type=Path, help="a trained model.keras")
    predict.add_argument("-o", "--output", required=True, type=Path, help="OUT.parquet")
    _card_flags(predict)
    predict.add_argument("--batch-size", type=int, default=32)
    predict.set_defaults(run=run_predict)

    importer = commands.add_parser(
        "import-model", parents=[common],
        help="import a trained .keras model into an experiment folder",
        description="SOURCE: a .keras file, a zip/tar.gz holding one, a folder, gdrive:<id> or a "
                    "drive.google.com link. TF checkpoints must be converted first.")
    importer.add_argument("source")
    importer.add_argument("--experiment-dir", required=True, type=Path,
                          help="e.g. results/experiments/b0_6class_standard_s42")
    _card_flags(importer)
    importer.add_argument("--mode", choices=["standard", "xai"],
                          help="training mode (default: from the folder name or model.json)")
    importer.add_argument("--max-bytes", type=float, default=2e9,
                          help="refuse archives larger than this uncompressed (default 2e9)")
    importer.add_argument("--force", action="store_true", help="replace an existing model.keras")
    importer.set_defaults(run=run_import)

    summary = commands.add_parser("summary", parents=[common],
                                  help="print the experiments' headline metrics")
    summary.add_argument("metrics", nargs="?", type=Path, default=DEFAULT_SUMMARY,
                         help=f"the aggregate step's metrics.csv (default {DEFAULT_SUMMARY})")
    summary.add_argument("--data", default="",
                         help="word naming the data in the headline, e.g. 'synthetic'")
    summary.set_defaults(run=run_summary)

    converter = commands.add_parser(
        "convert-weights", parents=[common],
        help="convert timm EfficientNetB0 weights (Zoobot's encoder) for the b0 backbone",
        description="SRC: a PyTorch state_dict of timm's efficientnet_b0, e.g. Zoobot's "
                    "pytorch_model.bin (read without torch; a pickle asking for anything but "
                    "tensors is refused), or a legacy Zoobot TF checkpoint prefix. DEST: a "
                    ".weights.h5 file; its card DEST.json (numerics, input scaling, source "
                    "sha256) is written beside it. See docs/zoobot-weights.md.")
    converter.add_argument("src", type=Path)
    converter.add_argument("dest", type=Path, help="NAME.weights.h5")
    converter.add_argument("--config", type=Path,
                           help="the model's timm config.json (architecture; mean/std)")
    converter.add_argument("--channels", type=int, choices=[1, 3], default=1,
                           help="1: greyscale, stem summed over colour (default); 3: colour")
    converter.add_argument("--scaling", choices=["zoobot", "config"], default="zoobot",
                           help="input scaling: 'zoobot' [0, 1] without mean/std, as Zoobot "
                                "trained (default); 'config': config.json's mean/std")
    converter.set_defaults(run=run_convert)
    return parser


def _card_flags(parser):
    parser.add_argument("--classes", choices=sorted(VARIANTS),
                        help="class variant (default: from model.json)")
    parser.add_argument("--crop-size", type=int,
                        help="central crop in pixels of a 424 px frame (default: from model.json)")


# --- predict -----------------------------------------------------------------------------------

def run_predict(args) -> int:
    from .predict import ModelCardError, NoImagesError, predict_images, write_predictions

    if not args.model.is_file():
        raise UserError(f"model file {args.model} does not exist")
    card = {"classes": args.classes, "crop_size": args.crop_size}
    try:
        table, skipped = predict_images(args.model, args.images, args.batch_size, card)
    except (ModelCardError, NoImagesError, ValueError) as error:
        raise UserError(str(error)) from error
    written = write_predictions(table, skipped, args.output)
    if not len(table):
        raise UserError(f"none of the {len(skipped)} inputs could be read; "
                        f"reasons in {written[-1]}")
    print(format_counts(table))
    print(f"wrote {len(table)} predictions to {written[0]}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable or missing inputs, listed in {written[1]}")
    return 0


def format_counts(table) -> str:
    from .predict import class_counts

    counts = class_counts(table)
    lines = [f"{'class':<12} {'count':>6} {'share':>6}"]
    rows = counts[["label", "count", "share"]].itertuples(index=False)
    lines += [f"{label:<12} {count:>6} {share:>6.1%}" for label, count, share in rows]
    return "\n".join(lines)


# --- import-model ------------------------------------------------------------------------------

def run_import(args) -> int:
    from .acquire import AcquireError
    from .importer import import_model

    card = {"classes": args.classes, "crop_size": args.crop_size, "mode": args.mode}
    try:
        target = import_model(args.source, args.experiment_dir, card, args.max_bytes, args.force)
    except (AcquireError, FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from error
    print(f"imported {args.source} to {target} (card: {target.with_name('model.json')}, "
          f"provenance: {target.with_name('imported.json')})")
    return 0


# --- summary -----------------------------------------------------------------------------------

def run_summary(args) -> int:
    if not args.metrics.is_file():
        raise UserError(f"summary file {args.metrics} does not exist; run the workflow's aggregate "
                        f"step first (e.g. `make demo`) or give the path of a metrics.csv")
    table = pd.read_csv(args.metrics)
    missing = [c for c in SUMMARY_COLUMNS + ["model", "classes", "mode", "seed"]
               if c not in table.columns]
    if missing:
        raise UserError(f"{args.metrics} lacks columns {missing}; expected the aggregate step's "
                        f"metrics.csv")
    print(format_summary(table))
    line = headline(table, args.data)
    if line:
        bold = sys.stdout.isatty()
        print("\n" + ("\033[1m" + line + "\033[0m" if bold else line))
    return 0


def format_summary(table) -> str:
    shown = pd.DataFrame({
        "experiment": table["experiment"], "subset": table["subset"],
        "n": table["n"].map(lambda v: "–" if pd.isna(v) else str(int(v))),
        "accuracy [95% CI]": [_with_interval(*v) for v in zip(
            table["accuracy"], table["accuracy_ci_low"], table["accuracy_ci_high"])],
        "macro-F1": table["macro_f1"].map(_number),
    })
    return shown.to_string(index=False)


def headline(table, data: str = "") -> str | None:
    """'B0 6-class <data> test accuracy: …' from the b0_6class run (standard mode and the lowest
    seed first), on test when that subset exists, else val; None without such a run."""
    runs = table[(table["model"] == "b0") & (table["classes"] == "6class")]
    for subset in ("test", "val"):
        rows = runs[runs["subset"] == subset]
        if len(rows):
            row = rows.sort_values(["mode", "seed"], key=_standard_first).iloc[0]
            words = " ".join(w for w in ("B0 6-class", data, subset, "accuracy:") if w)
            n = "–" if pd.isna(row["n"]) else int(row["n"])
            return (f"{words} {_number(row['accuracy'])} "
                    f"(macro-F1 {_number(row['macro_f1'])}, n={n})")
    return None


def _standard_first(column):
    if column.name != "mode":
        return column
    return column.map(lambda mode: ("0" if mode == "standard" else "1") + str(mode))


def _number(value) -> str:
    return "–" if pd.isna(value) else f"{value:.3f}"


def _with_interval(value, low, high) -> str:
    if pd.isna(low) or pd.isna(high):
        return _number(value)
    return f"{_number(value)} [{_number(low)}, {_number(high)}]"


# --- convert-weights ---------------------------------------------------------------------------

def run_convert(args) -> int:
    from .timm_convert import card_path, convert, convert_tf_checkpoint, is_tf_checkpoint

    if not (args.src.exists() or is_tf_checkpoint(args.src)):
        raise UserError(f"source {args.src} does not exist")
    try:
        if is_tf_checkpoint(args.src):
            if args.channels != 1 or args.config or args.scaling != "zoobot":
                raise UserError("a legacy Zoobot TF checkpoint is greyscale with its own "
                                "scaling: drop --channels/--config/--scaling")
            card = convert_tf_checkpoint(args.src, args.dest)
        else:
            card = convert(args.src, args.dest, config_json=args.config,
                           channels=args.channels, scaling=args.scaling)
    except (OSError, ValueError) as error:
        raise UserError(str(error)) from error
    print(f"wrote {args.dest} ({card['architecture']}, {card['channels']} channel(s), "
          f"{card['tensors']} tensors) and its card {card_path(args.dest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
