from spiralarms import acquire, logs

logs.to_file(snakemake.log[0])
url, sha256 = snakemake.params.source
acquire.download(url, snakemake.output.downloaded, sha256=sha256)
