from spiralarms import acquire, logs

logs.to_file(snakemake.log[0])
source = snakemake.params.source  # spiralarms.acquire.sources.RemoteSource
acquire.download(source.url, snakemake.output.downloaded, sha256=source.sha256, key=source.key)
