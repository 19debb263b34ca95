from pathlib import Path

from spiralarms import logs
from spiralarms.synthetic import generate
from spiralarms.synthetic.physical import write_physical

logs.to_file(snakemake.log[0])
s = snakemake.params.settings
out_dir = Path(snakemake.output.catalog).parent
generate.synthesize(
    out_dir,
    n_per_class=s["per_class"],
    n_elliptical=s["ellipticals"],
    n_edgeon=s["edgeon"],
    seed=s["seed"],
    n_missing_images=s["missing_images"],
    workers=snakemake.threads,
)
write_physical(out_dir, snakemake.output.physical, seed=s["seed"])
generate.contact_sheet(out_dir, snakemake.output.sheet)
