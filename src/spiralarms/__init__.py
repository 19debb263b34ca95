"""spiralarms: classify spiral galaxies by their number of arms (rebuild of arXiv 2412.11696)."""

import os

# TensorFlow's C++ start-up notices (oneDNN, CPU features) drown the pipeline's own progress;
# set TF_CPP_MIN_LOG_LEVEL yourself before importing to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
