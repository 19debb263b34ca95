"""Runs one tiny training in its own process (tests kill it, or compare two of them)."""

import json
import logging
import sys

from spiralarms.data.variants import Variant
from spiralarms.training import train

if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True)
    variant = Variant("stripes", (0, 1, 2), ("h", "v", "d"))
    train.train_experiment("b0", variant, args.get("mode", "xai"), args["seed"],
                           args["train"], args["val"], args["settings"], None,
                           args["model"], args["history"], args["work_dir"])
