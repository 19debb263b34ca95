"""TensorFlow's share of the machine for one job: the cores the scheduler gave it, and GPU
memory taken as needed.

Every job that runs a network (train, evaluate, xai, predict_chunk) calls `configure` first.
Left alone, TensorFlow starts a thread per core whatever the job declared, and the first job on a
GPU reserves nearly all of its memory, so an evaluation started beside a training would take the
memory the training needs.
"""

import contextlib
import logging

log = logging.getLogger(__name__)


def configure(threads: int | None = None, inter_op: int | None = None) -> int:
    """Memory growth on every visible GPU and, with `threads`, at most that many threads per op
    (`inter_op` ops at once, default 2 even for one thread: with a single inter-op thread the
    tf.data input pipeline and the training step starved each other, stalls of ~18 s with no CPU
    in use, measured on the demo's B0; two never stalled). Call before TensorFlow runs anything;
    later, it changes nothing and says so. Returns the number of visible GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # the GPU is already initialised
            tf.config.experimental.set_memory_growth(gpu, True)
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(
                int(inter_op or 2))
        except RuntimeError:
            log.info("TensorFlow already started: its thread count is left as it is")
    return len(gpus)
