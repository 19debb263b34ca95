"""Stellar mass and SFR for the synthetic galaxies, in the MPA-JHU table's format.

The real table (`stellar mass_SFR.csv`: specObjID, LGM_TOT_P50, sfr_tot_p50) comes from SDSS
CasJobs; this one lets the demo exercise the key join and the mass figures. Its trend is made
up on purpose and small (3-arm galaxies slightly lighter, as the paper reports), and ~5 % of
galaxies are left out, as the real table's quality cuts leave some out.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms import atomic
from spiralarms.synthetic.generate import read_truth

# Mean log10(M*/Msun) offset per truth kind; ellipticals are the most massive.
MASS_OFFSET = {"1": -0.1, "2": 0.1, "3": -0.25, "4": 0.0, "5+": 0.05, "?": -0.05,
               "elliptical": 0.4, "edgeon": 0.0, "irregular": -0.5, "merger": 0.3}


def write_physical(out_dir, path, seed: int) -> pd.DataFrame:
    out_dir = Path(out_dir)
    rng = np.random.default_rng([seed, 17])
    truth = read_truth(out_dir)
    ids = pd.read_csv(out_dir / "zoo2MainSpecz.csv.gz", usecols=["specobjid", "dr7objid"],
                      dtype="int64")
    table = truth[["dr7objid", "kind"]].merge(ids, on="dr7objid", validate="one_to_one")
    log_mass = 10.4 + table["kind"].map(MASS_OFFSET).to_numpy() + rng.normal(0, 0.35, len(table))
    log_sfr = 0.7 * (log_mass - 10.4) + rng.normal(0, 0.3, len(table))
    physical = pd.DataFrame({"specObjID": table["specobjid"], "LGM_TOT_P50": log_mass.round(4),
                             "sfr_tot_p50": log_sfr.round(4)})
    physical = physical[rng.random(len(physical)) > 0.05]
    with atomic.replacing(path) as partial:
        physical.sort_values("specObjID").to_csv(partial, index=False)
    return physical
