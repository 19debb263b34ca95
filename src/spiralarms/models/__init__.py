"""The networks and what defines a trained model: B0/V2M builders, weight sources (stages
`download_weights`, `convert_weights`, `extract_backbone`), timm conversion and the model card."""
