from spiralarms import logs
from spiralarms.predict import predict_images, write_predictions

logs.to_file(snakemake.log[0])
predictions, skipped = predict_images(snakemake.input.model, [snakemake.input.images])
write_predictions(predictions, skipped, snakemake.output.predictions)
