"""`python -m spiralarms.synthetic OUT_DIR`: write a synthetic GZ2 dataset (`generate.synthesize`).

Its contact sheets come with the `synthesize` rule (they show the model's view, which needs the
training sizes).
"""

import argparse

from spiralarms.synthetic.generate import synthesize


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m spiralarms.synthetic",
        description="Write a synthetic Galaxy Zoo 2 dataset in the real file formats.")
    parser.add_argument("out_dir")
    parser.add_argument("--per-class", type=int, nargs="+", default=[50],
                        help="galaxies per arm class (1 value for all six, or 6 values)")
    parser.add_argument("--elliptical", type=int, default=20)
    parser.add_argument("--edgeon", type=int, default=20)
    parser.add_argument("--irregular", type=int, default=10)
    parser.add_argument("--merger", type=int, default=10)
    parser.add_argument("--missing-images", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    per_class = args.per_class * 6 if len(args.per_class) == 1 else args.per_class
    synthesize(args.out_dir, per_class, args.elliptical, args.edgeon, args.seed,
               n_missing_images=args.missing_images, workers=args.workers,
               n_irregular=args.irregular, n_merger=args.merger)


if __name__ == "__main__":
    main()
