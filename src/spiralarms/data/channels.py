"""Input channels per network: `b0` takes greyscale (as Zoobot's B0 did), `v2m` RGB.

The one table of the networks there are and the images they take: the input pipeline colours
images by it, the networks size their input layer by it, the model card is checked against it and
experiment names draw their model from it. Free of TensorFlow: the workflow reads it while it
builds the DAG.
"""

CHANNELS = {"b0": 1, "v2m": 3}
