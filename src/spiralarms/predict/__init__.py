"""Stages `predict_split`, `predict_chunk`, `predict_gather`: a trained model applied to a folder or
a survey catalogue, in resumable chunks; FITS cut-outs."""
