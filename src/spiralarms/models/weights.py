"""Where a backbone's pretrained weights come from: config `models.<m>.weights` -> files to fetch.

Weights are pipeline inputs: every download is its own (local) rule, so no training job and no
compute node needs the internet. Accepted sources:

- null: train from scratch;
- a local file: a Keras `.weights.h5`/`.h5` of the backbone as is, or a PyTorch state_dict
  (`.bin`, `.pth`, `.pt`) of timm's efficientnet_b0, converted by `spiralarms.models.timm_to_keras`;
- an `https://` URL of either kind: downloaded once (resume, sha256), then as a local file;
- `imagenet`: Keras' own ImageNet file for the backbone, fetched by that same download rule;
- `experiment:<name>`: the backbone of another experiment's trained model (that experiment
  trains from scratch first), e.g. heads for the merged variants on a 6-class backbone; it names
  an experiment, so `spiralarms.training.backbones` plans it (and each experiment's plan);
- `hf_hub:<owner>/<repo>`: a timm model on the Hugging Face hub (`pytorch_model.bin` and its
  `config.json`, whose architecture the converter checks; its timm mean/std are recorded, not
  applied, since Zoobot trained on [0, 1] inputs: docs/zoobot-weights.md), e.g. Zoobot's
  `hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0`; the host is `$HF_ENDPOINT` when set, as
  with huggingface_hub.

Importing this module stays cheap (no TensorFlow): Snakemake calls it while building the DAG.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str | None = None
    md5: str | None = None  # Keras publishes md5 sums for its ImageNet files


HF_HUB = "hf_hub:"
EXPERIMENT = "experiment:"
HF_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
STATE_DICT_SUFFIXES = (".bin", ".pth", ".pt")
# Keras' ImageNet no-top files (BASE_WEIGHTS_PATH, WEIGHTS_HASHES in
# keras/src/applications/efficientnet_v2.py; a test checks them against the installed Keras,
# kept literal so building the DAG never imports TensorFlow).
KERAS_IMAGENET = {
    "v2m": Download(
        "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
        "efficientnetv2-m_notop.h5", md5="1b8dc055df72dde80d614482840fe342"),
}
# The paper's weights per model, for saying what ran (docs/method.md, "Weights").
PAPER_WEIGHTS = {
    "b0": "Zoobot's greyscale GZ DECaLS EfficientNetB0 (replicated_train_only_greyscale_tf)",
    "v2m": "ImageNet (Keras applications)",
}
ZOOBOT_REPOS = ("mwalmsley/zoobot-encoder-efficientnet_b0",)


class WeightsError(ValueError):
    """A `models.<m>.weights` value that cannot be turned into a weights file."""


@dataclass(frozen=True)
class WeightsPlan:
    """What `models.<model>.weights` needs: files to download, an optional conversion, and the
    file the backbone finally loads (None: from scratch)."""

    model: str
    spec: str | None
    file: str | None = None
    downloads: dict = field(default_factory=dict)  # local path -> Download
    state_dict: str | None = None  # set when `file` is converted from a PyTorch state_dict
    timm_config: str | None = None
    experiment: str | None = None  # set when `file` is another experiment's backbone (training)

    @property
    def pretrained(self) -> bool:
        return self.file is not None

    @property
    def asked_by(self) -> str:
        """The config entry behind these files, for errors about them."""
        return f"config models.{self.model}.weights={self.spec!r}"

    def matches_paper(self) -> str:
        """'yes', 'no', or for Zoobot's newer encoder 'zoobot-v2' (in-domain, not the same file)."""
        if self.spec is None:
            return "no"
        if self.model == "v2m" and self.spec == "imagenet":
            return "yes"
        if self.model == "b0" and any(repo in self.spec for repo in ZOOBOT_REPOS):
            return "zoobot-v2"
        return "no"


def plan(model: str, spec, sha256=None, weights_dir="results/weights") -> WeightsPlan:
    """The files behind config `models.<model>.weights: spec` (sha256: `weights_sha256`), all
    sources but `experiment:` (`spiralarms.training.backbones.plan`, which calls this one)."""
    key = f"models.{model}.weights"
    if spec is None:
        return WeightsPlan(model, None)
    if not isinstance(spec, str) or not spec:
        raise WeightsError(f"{key}={spec!r}: give null, a file, an https:// URL, 'imagenet', "
                           f"'{HF_HUB}<owner>/<repo>' or '{EXPERIMENT}<experiment name>'")
    downloads = f"{weights_dir}/download"
    if spec == "imagenet":
        if model not in KERAS_IMAGENET:
            raise WeightsError(
                f"{key}=imagenet: our {model} takes 1-channel greyscale, ImageNet's stem has 3 "
                f"channels; use {HF_HUB}mwalmsley/zoobot-encoder-efficientnet_b0 (the paper's "
                "in-domain recipe), a converted file, or null")
        source = KERAS_IMAGENET[model]
        path = f"{downloads}/{PurePosixPath(source.url).name}"
        return WeightsPlan(model, spec, path, {path: Download(source.url, sha256, source.md5)})
    if spec.startswith(EXPERIMENT):  # names an experiment: planned in the training layer
        raise WeightsError(f"{key}={spec!r}: plan it with spiralarms.training.backbones.plan")
    if spec.startswith(HF_HUB):
        repo = spec.removeprefix(HF_HUB)
        if not HF_REPO.fullmatch(repo):
            raise WeightsError(f"{key}={spec!r}: write it as {HF_HUB}<owner>/<repo>")
        host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        folder = f"{downloads}/{repo.replace('/', '--')}"
        state, config = f"{folder}/pytorch_model.bin", f"{folder}/config.json"
        return WeightsPlan(
            model, spec, f"{weights_dir}/{repo.replace('/', '--')}.weights.h5",
            {state: Download(f"{host}/{repo}/resolve/main/pytorch_model.bin", sha256),
             config: Download(f"{host}/{repo}/resolve/main/config.json")},
            state_dict=state, timm_config=config)
    if spec.startswith(("http://", "https://")):
        name = unquote(PurePosixPath(urlsplit(spec).path).name)
        if not name or "/" in name or name.startswith("."):
            raise WeightsError(f"{key}={spec!r}: the URL does not end in a file name")
        local = f"{downloads}/{name}"
        return _local(model, spec, local, weights_dir, {local: Download(spec, sha256)})
    return _local(model, spec, spec, weights_dir, {})


def _local(model, spec, path, weights_dir, downloads) -> WeightsPlan:
    suffix = PurePosixPath(path).suffix
    if suffix in STATE_DICT_SUFFIXES:
        stem = PurePosixPath(path).stem
        return WeightsPlan(model, spec, f"{weights_dir}/{stem}.weights.h5", downloads,
                           state_dict=path)
    if suffix != ".h5":
        raise WeightsError(
            f"models.{model}.weights={spec!r}: expected a Keras .weights.h5/.h5 file or a PyTorch "
            f"state_dict ({', '.join(STATE_DICT_SUFFIXES)}), not {suffix or 'a file without suffix'}")
    return WeightsPlan(model, spec, path, downloads)


def fetch(source: Download, dest, key: str | None = None) -> dict:
    """Download one weights file (resumable; sha256 and, for Keras' files, md5 checked); `key`:
    the config key asking for it (models.<m>.weights), named by every error."""
    from spiralarms.acquire import ChecksumError, download, sha256_of

    entry = download(source.url, dest, sha256=source.sha256, key=key)
    if source.md5:
        md5 = sha256_of(dest, algorithm="md5")
        if md5 != source.md5:
            os.remove(dest)
            raise ChecksumError(f"{dest} from {source.url}: md5 {md5}, expected {source.md5} "
                                "(Keras' published sum); the file was removed, rerun to download "
                                "it again")
    return entry
