from spiralarms import acquire, logs

logs.job(snakemake)
source = snakemake.params.source  # spiralarms.acquire.sources.RemoteSource
acquire.download(source.url, snakemake.output.downloaded, sha256=source.sha256, key=source.key)
