"""The `spiralarms` command: predict new images, import a trained model, print the summary.

Exit codes: 0 success (also when some images were skipped), 2 bad input (missing model, no
images, no model card, unsafe or missing model, missing summary file).
Heavy modules (TensorFlow) are imported inside the subcommands, so `--help` and `summary` are quick.
"""

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from spiralarms import logs
from spiralarms.data.variants import VARIANTS
from spiralarms.models import MODES
from spiralarms.report.tables import count, number, with_interval

DEFAULT_SUMMARY = Path("results/summary/metrics.csv")
SUMMARY_COLUMNS = ["experiment", "subset", "n", "accuracy", "accuracy_ci_low",
                   "accuracy_ci_high", "macro_f1"]


class UserError(Exception):
    """Bad input on the command line: printed as one message, exit code 2."""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if argv is None:  # the `spiralarms` command, not a call from Python: before TensorFlow
        logs.filter_tensorflow_noise()  # its start-up lines stay off the terminal
    else:
        logs.quiet_tensorflow()
    try:
        return args.run(args)
    except UserError as error:
        print(f"spiralarms {args.command}: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spiralarms", description="Spiral-arm number classification of galaxy images.")
    common = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    commands = parser.add_subparsers(dest="command", required=True)

    _predict_parser(commands, common)
    _cutouts_parser(commands, common)

    importer = commands.add_parser(
        "import-model", parents=[common],
        help="import a trained .keras model into an experiment folder",
        description="SOURCE: a .keras file, a zip/tar.gz holding one, a folder, gdrive:<id> or a "
                    "drive.google.com link, the https:// URL of an exported model's zip or "
                    "hf_hub:<owner>/<repo> (spiralarms export-model; fetched once into the model "
                    "cache). TF checkpoints must be converted first.")
    importer.add_argument("source")
    importer.add_argument("--experiment-dir", required=True, type=Path,
                          help="e.g. results/experiments/b0_6class_standard_s42")
    _card_flags(importer)
    importer.add_argument("--mode", choices=MODES,
                          help="training mode (default: from the folder name or model.json)")
    importer.add_argument("--max-bytes", type=float, default=2e9,
                          help="refuse archives larger than this uncompressed (default 2e9)")
    importer.add_argument("--force", action="store_true", help="replace an existing model.keras")
    importer.set_defaults(run=run_import)

    exporter = commands.add_parser(
        "export-model", parents=[common],
        help="write a trained experiment as a folder to share (model, card, README, config)",
        description="EXPERIMENT: a name under results/experiments/ or an experiment folder. "
                    "Writes FOLDER/model.keras, model.json, README.md (a Hugging Face model card), "
                    "config.yaml (the training config: the files you pass with --configfile, "
                    "as `spiralarms config` reads them) and metrics.json. Zip the folder and "
                    "give its URL, or push it to Hugging Face, and `predict --model` takes it.")
    exporter.add_argument("experiment")
    exporter.add_argument("-o", "--output", required=True, type=Path, help="the folder to write")
    exporter.add_argument("--configfile", "--configfiles", nargs="+", default=[], type=Path,
                          metavar="FILE", help="the config files the experiment was run with "
                                               "(default: config/config.yaml, the real run)")
    exporter.add_argument("--license", help="licence id for the model card (default: gpl-3.0 "
                                            "when the backbone is Zoobot's encoder, else other)")
    exporter.add_argument("--force", action="store_true", help="replace an existing FOLDER")
    exporter.set_defaults(run=run_export)

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

    configs = commands.add_parser(
        "config", parents=[common],
        help="print the config a run uses: every key, its value and where it came from",
        description="The config `snakemake [--configfile FILE ...]` would use, checked as the "
                    "workflow checks it. Without --configfile: the real run, config/config.yaml, "
                    "over the schema's defaults; with it: the files, in order, over the schema's "
                    "defaults only (config/README.md).")
    configs.add_argument("--configfile", "--configfiles", nargs="+", default=[], type=Path,
                         metavar="FILE", help="the files you pass to snakemake, in the same order")
    configs.set_defaults(run=run_config)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spiralarms")
    except PackageNotFoundError:
        return "(not installed: run `make install`)"


def run_config(args) -> int:
    from spiralarms.config_checks import ConfigError
    from spiralarms.config_layers import effective, render

    try:
        rows = effective(args.configfile)
    except ConfigError as error:
        raise UserError(str(error)) from None
    sys.stdout.write(render(rows, relative_to=Path.cwd()))
    return 0


def _card_flags(parser):
    parser.add_argument("--classes", choices=sorted(VARIANTS),
                        help="class variant (default: from model.json)")
    parser.add_argument("--crop-size", type=int,
                        help="central crop in pixels of a 424 px frame (default: from model.json)")


# --- predict -----------------------------------------------------------------------------------

def _predict_parser(commands, common):
    from spiralarms.predict.chunks import DEFAULTS

    predict = commands.add_parser(
        "predict", parents=[common],
        help="predict arm numbers for images, folders or a catalogue (JPEG, PNG, FITS)",
        description="Images are preprocessed exactly as in training (model.json gives model "
                    "type, image size and central crop). Frame them like the GZ2 424x424 "
                    "cut-outs, or give each galaxy's size (--size-column). With --chunk-size the "
                    "catalogue is predicted in chunks into a parquet dataset, and a rerun skips "
                    "finished chunks.")
    predict.add_argument("images", nargs="*", type=Path, help="image files and/or folders")
    predict.add_argument("--catalog", type=Path,
                         help="CSV or parquet with an id and a file column (Zoobot's id_str, "
                              "file_loc); relative files resolve against its folder")
    predict.add_argument("--model", required=True,
                         help="a trained model.keras, the https:// URL of an exported model's zip "
                              "or hf_hub:<owner>/<repo> (spiralarms export-model; fetched once "
                              "into $SPIRALARMS_MODEL_CACHE, default ~/.cache/spiralarms/models)")
    predict.add_argument("-o", "--output", required=True, type=Path,
                         help="OUT.parquet, OUT.csv, OUT.fits (FITS binary table) or OUT.vot "
                              "(VOTable; both with units, UCDs and the catalogue's ra/dec) (with "
                              "--chunk-size: OUT.parquet, a folder)")
    predict.add_argument("--id-column", default=DEFAULTS["id_column"])
    predict.add_argument("--file-column", default=DEFAULTS["file_column"])
    predict.add_argument("--size-column",
                         help="galaxy size per row in pixels of its image (e.g. Petrosian R90): "
                              "frames it as GZ2 does (424 px at 0.02 R90 per pixel)")
    predict.add_argument("--pixel-scale", type=float,
                         help="arcsec per pixel, when --size-column is in arcsec")
    predict.add_argument("--chunk-size", type=int,
                         help="galaxies per chunk: predict chunk by chunk, resumable")
    predict.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                         help=f"galaxies per model call (default {DEFAULTS['batch_size']}; lower "
                              "it when memory runs out)")
    predict.add_argument("--tta", type=int, default=DEFAULTS["tta"],
                         help="test-time views per galaxy, 1-8 (rotations, then mirrored): mean, "
                              "std and entropy")
    predict.add_argument("--threads", type=int, help="CPU threads (default: all)")
    predict.add_argument("--max-upscale", type=_max_upscale, default=DEFAULTS["max_upscale"],
                         help="skip images whose window the model would enlarge more than this "
                              "(a number > 0; 1 = never enlarge)")
    predict.add_argument("--fits-hdu", help="FITS HDU index or name (default: first with an "
                                            "image)")
    predict.add_argument("--fits-bands", help="FITS planes as R,G,B (e.g. 2,1,0) or one plane")
    predict.add_argument("--stretch", choices=["asinh", "linear", "zscale"],
                         help="FITS stretch (default asinh)")
    predict.add_argument("--asinh-a", type=float, help="asinh softening a (default 0.1)")
    predict.add_argument("--percentiles",
                         help="FITS interval as LOW,HIGH percentiles (default 0.5,99.5)")
    predict.add_argument("--low", type=float, help="FITS value mapped to black")
    predict.add_argument("--high", type=float, help="FITS value mapped to white")
    _card_flags(predict)
    predict.set_defaults(run=run_predict)


def _max_upscale(text) -> float:
    from spiralarms.predict.records import check_max_upscale

    try:
        return check_max_upscale(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("max_upscale", "--max-upscale", 1)) \
            from None


def run_predict(args) -> int:
    from spiralarms.atomic import OutputError, check_writable
    from spiralarms.predict import chunks
    from spiralarms.predict.records import NoImagesError, check_output_path

    source = _predict_source(args)
    try:
        check_output_path(args.output)
        if args.chunk_size is not None:
            chunks.layout(args.output)
        check_writable(args.output.parent)  # before any image is predicted
        args.model = _local_model(args.model)
        return _predict(args, source)
    except (NoImagesError, chunks.CatalogError, chunks.ChunkError, OutputError, MemoryError,
            ValueError) as error:
        raise UserError(str(error)) from error


def _predict(args, source) -> int:
    from spiralarms.models.model_card import ModelCardError
    from spiralarms.predict import chunks
    from spiralarms.predict.fits import FitsOptions
    from spiralarms.predict.predictor import (
        ModelFileError,
        Predictor,
        configure_threads,
        predict_images,
        predict_rows,
    )
    from spiralarms.predict.records import NoImagesError, write_predictions

    try:
        fits = FitsOptions.from_dict(_fits_options(args))
        args.threads = configure_threads(args.threads)  # the input pipeline's share
        card = {"classes": args.classes, "crop_size": args.crop_size}
        predictor = Predictor(args.model, card, args.batch_size, args.tta, fits, args.max_upscale)
        if args.chunk_size is not None:
            return _run_chunked(args, predictor, source)
        if args.catalog:
            settings = chunks.job_settings({"catalog": str(args.catalog), **_input_options(args)})
            rows = chunks.read_input(args.catalog, settings["id_column"],
                                     settings["file_column"], settings["size_column"],
                                     settings["pixel_scale"])
            if not len(rows):
                raise NoImagesError(f"catalogue {args.catalog} has no rows")
            table, skipped = predict_rows(predictor, rows, args.threads)
        else:
            table, skipped = predict_images(predictor, args.images, threads=args.threads)
    except (ModelCardError, ModelFileError) as error:
        raise UserError(str(error)) from error
    written = write_predictions(table, skipped, args.output, catalog=args.catalog)
    if not len(table):
        raise UserError(f"none of the {len(skipped)} inputs could be predicted; "
                        f"reasons in {written[-1]}")
    print(format_counts(table))
    print(f"wrote {len(table)} predictions to {written[0]}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable or missing inputs, listed in {written[1]}")
        print("  " + _reasons_line([s["code"] for s in skipped]))
    return 0


def _predict_source(args):
    if args.catalog and args.images:
        raise UserError("give either --catalog or image files/folders, not both")
    if not args.catalog and not args.images:
        raise UserError("nothing to predict: give image files/folders or --catalog FILE")
    if args.catalog and not args.catalog.exists():
        raise UserError(f"catalogue {args.catalog} does not exist; check the path")
    if args.chunk_size is not None and len(args.images) == 1 and not args.images[0].exists():
        raise UserError(f"input folder {args.images[0]} does not exist; check the path")
    if args.chunk_size is not None and not args.catalog and \
            (len(args.images) != 1 or not args.images[0].is_dir()):
        raise UserError("--chunk-size needs --catalog FILE or one folder of images")
    return args.catalog or args.images[0]


def _input_options(args) -> dict:
    return {"id_column": args.id_column, "file_column": args.file_column,
            "size_column": args.size_column, "pixel_scale": args.pixel_scale}


def _fits_options(args) -> dict:
    def numbers(text, kind, name):
        try:
            return [kind(v) for v in text.split(",")] if text else None
        except ValueError:
            raise UserError(f"{name} {text!r}: give comma-separated numbers") from None

    hdu = args.fits_hdu
    return {"hdu": int(hdu) if hdu and hdu.lstrip("-").isdigit() else hdu,
            "bands": numbers(args.fits_bands, int, "--fits-bands"), "stretch": args.stretch,
            "asinh_a": args.asinh_a,
            "percentiles": numbers(args.percentiles, float, "--percentiles"),
            "low": args.low, "high": args.high}


def _run_chunked(args, predictor, source) -> int:
    from spiralarms.predict import chunks

    entry = {"catalog" if args.catalog else "images": str(source), **_input_options(args),
             "chunk_size": args.chunk_size}
    summary = chunks.run_chunked(predictor, source, chunks.job_settings(entry), args.output,
                                 args.threads)
    paths = chunks.layout(args.output)
    if not summary["predicted"]:
        raise UserError(f"none of the {summary['skipped']} rows could be predicted; reasons in "
                        f"{paths['skipped']}")
    lines = [f"{'class':<12} {'count':>6} {'share':>6}"]
    lines += [f"{c['label']:<12} {c['count']:>6} {c['share']:>6.1%}" for c in summary["classes"]]
    print("\n".join(lines))
    now = len(summary["predicted_chunks"])
    print(f"wrote {summary['predicted']} predictions in {summary['chunks']} chunks "
          f"({now} predicted now, {summary['chunks'] - now} already finished) to "
          f"{paths['dataset']}/")
    if summary["skipped"]:
        codes = [s["code"] for s in summary["skipped_by_reason"] for _ in range(s["count"])]
        print(f"skipped {summary['skipped']} rows, listed in {paths['skipped']}")
        print("  " + _reasons_line(codes))
    print(f"summary: {paths['summary_md']}, {paths['summary']}, {paths['figure']}")
    return 0


def _reasons_line(codes) -> str:
    from collections import Counter

    from spiralarms.predict.records import SKIP_MEANINGS

    return "; ".join(f"{count} {SKIP_MEANINGS.get(code, code)}"
                     for code, count in Counter(codes).most_common())


def format_counts(table) -> str:
    from spiralarms.predict.records import class_counts

    counts = class_counts(table)
    lines = [f"{'class':<12} {'count':>6} {'share':>6}"]
    rows = counts[["label", "count", "share"]].itertuples(index=False)
    lines += [f"{label:<12} {count:>6} {share:>6.1%}" for label, count, share in rows]
    return "\n".join(lines)


# --- cutouts ------------------------------------------------------------------------------------

def _cutouts_parser(commands, common):
    from spiralarms.acquire.cutouts import CUTOUT_DEFAULTS as D
    from spiralarms.acquire.cutouts import SERVICES

    cutouts = commands.add_parser(
        "cutouts", parents=[common],
        help="fetch cut-outs for a table of sky positions (SDSS SkyServer, Legacy Surveys)",
        description="POSITIONS: CSV or parquet with an id column, ra and dec in degrees and "
                    "optionally a galaxy size in arcsec (--size-column petroR90_r): each cut-out "
                    "is then framed as GZ2's (424 px at 0.02 x R90 arcsec/px), else at a fixed "
                    "--scale. FOLDER gets one image per position, journal.jsonl and manifest.csv "
                    "(every row: url, sha256, bytes, status and the reason for a skip), which "
                    "`spiralarms predict --catalog FOLDER/manifest.csv` reads. A rerun fetches "
                    "only what is missing.")
    cutouts.add_argument("positions", type=Path)
    cutouts.add_argument("-o", "--output", required=True, type=Path, help="FOLDER")
    cutouts.add_argument("--service", choices=list(SERVICES), default=D["service"],
                         help=f"sdss: SkyServer ImgCutout (GZ2's source); legacy: the Legacy "
                              f"Surveys viewer (default {D['service']})")
    cutouts.add_argument("--base-url", help="the service's base URL (default: " + ", ".join(
        f"{name} {service['base_url']}" for name, service in SERVICES.items()) + ")")
    cutouts.add_argument("--id-column", default="id_str")
    cutouts.add_argument("--ra-column", default="ra")
    cutouts.add_argument("--dec-column", default="dec")
    cutouts.add_argument("--size-column",
                         help="galaxy size in arcsec, e.g. petroR90_r: frames each cut-out as GZ2")
    cutouts.add_argument("--scale", type=float, default=D["fixed_scale"],
                         help=f"arcsec per pixel for rows without a size (default "
                              f"{D['fixed_scale']}: GZ2's frame of a galaxy of R90 9 arcsec)")
    cutouts.add_argument("--pixels", type=int, default=D["size"],
                         help=f"cut-out width and height (default {D['size']}, GZ2's)")
    cutouts.add_argument("--layer", default=D["layer"], help="legacy: the survey layer")
    cutouts.add_argument("--format", dest="image_format", choices=["jpeg", "fits"],
                         default=D["image_format"], help="legacy: jpeg or a FITS cube")
    cutouts.add_argument("--bands", default=D["bands"], help="legacy FITS: the bands")
    cutouts.add_argument("--concurrency", type=int, default=D["concurrency"],
                         help=f"connections at once (default {D['concurrency']})")
    cutouts.add_argument("--rate", type=float, default=D["rate"],
                         help=f"requests per second at most, all connections together (default "
                              f"{D['rate']:g})")
    cutouts.add_argument("--timeout", type=float, default=D["timeout"],
                         help=f"seconds for one whole answer (default {D['timeout']:g})")
    cutouts.add_argument("--retries", type=int, default=D["retries"],
                         help=f"retries of a timeout, dropped connection, 429 or 5xx (default "
                              f"{D['retries']}); waits double from --backoff, or follow "
                              f"Retry-After")
    cutouts.add_argument("--backoff", type=float, default=D["backoff"],
                         help=f"seconds before the first retry (default {D['backoff']:g})")
    cutouts.set_defaults(run=run_cutouts)


def run_cutouts(args) -> int:
    from spiralarms.acquire.cutouts import (
        CutoutError,
        CutoutOptions,
        fetch_cutouts,
        summary_line,
    )
    from spiralarms.atomic import OutputError
    from spiralarms.gz2.catalog import CatalogError

    if not args.positions.is_file():
        raise UserError(f"positions table {args.positions} does not exist; check the path")
    try:
        options = CutoutOptions(
            service=args.service, base_url=args.base_url, layer=args.layer,
            image_format=args.image_format, bands=args.bands, size=args.pixels,
            fixed_scale=args.scale, concurrency=args.concurrency, rate=args.rate,
            timeout=args.timeout, retries=args.retries, backoff=args.backoff)
        summary = fetch_cutouts(args.positions, args.output, options, args.id_column,
                                args.ra_column, args.dec_column, args.size_column,
                                progress=not args.quiet)
    except (CutoutError, CatalogError, OutputError) as error:
        raise UserError(str(error)) from error
    print(summary_line(summary))
    if not summary["fetched"]:
        refused = {"http_error", "not_an_image"} & set(summary["skipped_by_code"])
        hint = (f"; the service at {summary['base_url']} refused them or answered no image: "
                f"check --base-url and --service") if refused else ""
        raise UserError(f"none of the {summary['rows']} positions gave a cut-out; the reasons "
                        f"are in {summary['manifest']}{hint}")
    print(f"next: spiralarms predict --catalog {summary['manifest']} --model MODEL.keras "
          f"-o arms.fits")
    return 0


def _local_model(spec) -> Path:
    """--model as a local path: an exported model at a URL or on the hub is fetched first."""
    from spiralarms.acquire import AcquireError
    from spiralarms.acquire.model_source import fetch_model, is_remote_model

    if not is_remote_model(spec):
        return Path(spec)
    try:
        return fetch_model(spec)
    except AcquireError as error:
        raise UserError(str(error)) from error


# --- import-model ------------------------------------------------------------------------------

def run_import(args) -> int:
    from spiralarms.acquire import AcquireError
    from spiralarms.training.importer import import_model

    card = {"classes": args.classes, "crop_size": args.crop_size, "mode": args.mode}
    try:
        target = import_model(args.source, args.experiment_dir, card, args.max_bytes, args.force)
    except (AcquireError, FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from error
    print(f"imported {args.source} to {target} (card: {target.with_name('model.json')}, "
          f"provenance: {target.with_name('imported.json')})")
    return 0


# --- export-model ------------------------------------------------------------------------------

def run_export(args) -> int:
    from spiralarms.atomic import OutputError
    from spiralarms.config_checks import ConfigError
    from spiralarms.config_layers import load
    from spiralarms.report.model_export import ExportError, export_model

    folder = Path(args.experiment)
    if not folder.is_dir() and len(folder.parts) == 1:
        folder = Path("results/experiments") / args.experiment
    if not folder.is_dir():
        raise UserError(f"experiment {args.experiment}: no folder {folder}; give an experiment "
                        f"name under results/experiments/ or its folder")
    try:
        out = export_model(folder, args.output, load(args.configfile), args.license, args.force)
    except (ConfigError, ExportError, OutputError) as error:
        raise UserError(str(error)) from error
    print(f"exported {folder} to {out}/ (model.keras, model.json, README.md, config.yaml); "
          f"share it zipped, or push it to a Hugging Face model repository")
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
    targets = args.metrics.with_name("targets.csv")  # labels against votes (issue 20)
    if targets.is_file() and targets.stat().st_size:
        from spiralarms.report.targets import format_targets

        text = format_targets(pd.read_csv(targets))
        print("\n" + text if text else "", end="\n" if text else "")
    line = headline(table, args.data)
    if line:
        bold = sys.stdout.isatty()
        print("\n" + ("\033[1m" + line + "\033[0m" if bold else line))
    return 0


def format_summary(table) -> str:
    shown = pd.DataFrame({
        "experiment": table["experiment"], "subset": table["subset"],
        "n": table["n"].map(count),
        "accuracy [95% CI]": [with_interval(*v) for v in zip(
            table["accuracy"], table["accuracy_ci_low"], table["accuracy_ci_high"])],
        "macro-F1": table["macro_f1"].map(number),
    })
    text = shown.to_string(index=False)
    if "notes" in table:  # plain-words notes, e.g. that a run is a smoke run, under the table
        notes = table.drop_duplicates("experiment")
        text += "".join(f"\n{row.experiment}: {row.notes}" for row in notes.itertuples()
                        if isinstance(row.notes, str) and row.notes)
    return text


def headline(table, data: str = "") -> str | None:
    """'B0 6-class <data> test accuracy: …' from the b0_6class run (standard mode and the lowest
    seed first), on test when that subset exists, else val; None without such a run."""
    runs = table[(table["model"] == "b0") & (table["classes"] == "6class")]
    for subset in ("test", "val"):
        rows = runs[runs["subset"] == subset]
        if len(rows):
            row = rows.sort_values(["mode", "seed"], key=_standard_first).iloc[0]
            words = " ".join(w for w in ("B0 6-class", data, subset, "accuracy:") if w)
            return (f"{words} {number(row['accuracy'])} "
                    f"(macro-F1 {number(row['macro_f1'])}, n={count(row['n'])})")
    return None


def _standard_first(column):
    if column.name != "mode":
        return column
    return column.map(lambda mode: ("0" if mode == "standard" else "1") + str(mode))


# --- convert-weights ---------------------------------------------------------------------------

def run_convert(args) -> int:
    from spiralarms.models.tf_checkpoint import convert_tf_checkpoint, is_tf_checkpoint
    from spiralarms.models.timm_to_keras import convert
    from spiralarms.models.weights_card import card_path

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
