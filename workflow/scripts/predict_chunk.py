"""predict_chunk: one chunk of a prediction job -> its parquet file (every row)."""

from spiralarms import logs

logs.to_file(snakemake.log[0])  # before TensorFlow starts: its start-up lines go to the log too

from spiralarms.predict.chunks import job_settings, predict_chunk, read_plan
from spiralarms.predict.predictor import Predictor, configure_threads

pipeline_threads = configure_threads(snakemake.threads)
settings = job_settings(snakemake.config["predict"][snakemake.wildcards.name])
predictor = Predictor(snakemake.input.model, None, settings["batch_size"], settings["tta"],
                      settings["fits"], settings["max_upscale"])
plan = read_plan(snakemake.input.plan)
predict_chunk(predictor, snakemake.input.catalog, plan, snakemake.wildcards.chunk,
              snakemake.output.chunk, pipeline_threads)
