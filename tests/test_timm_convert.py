"""timm efficientnet_b0 -> our Keras b0: parity with timm itself, pickle safety, clear errors, CLI,
legacy TF checkpoint.

The parity tests build timm's own efficientnet_b0 (random weights, no download) and compare its
pooled `forward_features` with our backbone built by `spiralarms.models.networks` from the converted file.
"""

import errno
import json
import os
import pickle
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np
import pytest
from timm_support import torch_and_timm

from spiralarms.atomic import OutputError
from spiralarms.cli import main
from spiralarms.models import tf_checkpoint, timm_to_keras, torch_pickle, weights_card
from spiralarms.models.networks import _backbone, build_model
from spiralarms.models.torch_pickle import UnsafePickleError
from spiralarms.models.weights_card import ConversionError

TOLERANCE = 1e-4  # max |keras - timm| relative to max |timm feature|
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def torch_timm():
    return torch_and_timm()


def _calibrated(torch, timm, name="efficientnet_b0", seed=0, mean=0.0, std=1.0):
    """timm's model with non-trivial batch-norm statistics, in eval mode.

    A tenth of each conv's output channels are made nearly dead (weights x 0.01) so their running
    variances are tiny, as in trained networks, and epsilon 1e-5 vs 1e-3 shows; running
    statistics come from a few random batches ((U[0, 1] - mean) / std, as the test will feed),
    then are perturbed; gamma/beta are random. (Fed inputs far from its calibration, such a
    random network is ill-conditioned: float32 and float64 timm then differ by percents.)"""
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]:
            conv.weight[torch.rand(conv.out_channels, generator=gen) < 0.1] *= 0.01
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for bn in norms:
            bn.weight.uniform_(0.5, 1.5, generator=gen)
            bn.bias.normal_(0, 0.2, generator=gen)
            bn.momentum = None  # cumulative average over the calibration batches
            bn.reset_running_stats()
        model.train()
        shift = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        scale = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        for _ in range(3):
            model((torch.rand(8, 3, 96, 96, generator=gen) - shift) / scale)
        for bn in norms:
            bn.running_var.mul_(torch.empty(bn.num_features).uniform_(0.8, 1.25, generator=gen))
            bn.running_mean.add_(0.1 * torch.randn(bn.num_features, generator=gen)
                                 * bn.running_var.sqrt())
    return model.eval()


def _timm_pooled(torch, model, images_nhwc):
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
        return model.forward_features(x).mean((2, 3)).numpy()


def _relative(got, want) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def timm_b0(torch_timm, tmp_path_factory):
    torch, timm = torch_timm
    model = _calibrated(torch, timm)
    path = tmp_path_factory.mktemp("timm") / "pytorch_model.bin"
    torch.save(model.state_dict(), path)
    return model, path


def _images(shape, seed=1):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# --- parity --------------------------------------------------------------------------------------

def test_colour_conversion_matches_timm_and_needs_both_numerics_changes(
        torch_timm, timm_b0, tmp_path):
    torch, _ = torch_timm
    model, state_dict = timm_b0
    dest = tmp_path / "zoobot_rgb.weights.h5"
    card = timm_to_keras.convert(state_dict, dest, channels=3)
    size = 224
    backbone = _backbone("b0", keras.Input((size, size, 3)), str(dest))
    images = _images((2, size, size, 3))
    want = _timm_pooled(torch, model, images)
    got = backbone(images, training=False).numpy()
    assert got.shape == (2, 7, 7, 1280)
    error = _relative(got.mean((1, 2)), want)
    print(f"\ncolour parity: max |diff| {np.abs(got.mean((1, 2)) - want).max():.3g}, "
          f"relative {error:.3g} (feature scale {np.abs(want).max():.3g})")
    assert error < TOLERANCE

    # The check is sensitive: Keras' own epsilon or padding is far off.
    bns = [la for la in backbone.layers if isinstance(la, keras.layers.BatchNormalization)]
    for la in bns:
        la.epsilon = 1e-3
    keras_epsilon = _relative(backbone(images, training=False).numpy().mean((1, 2)), want)
    for la in bns:
        la.epsilon = 1e-5
    for la in backbone.layers:
        if isinstance(la, keras.layers.ZeroPadding2D):
            k = backbone.get_layer(la.name.removesuffix("_pad")).kernel_size[0]
            la.padding = ((k // 2 - 1, k // 2), (k // 2 - 1, k // 2))  # correct_pad, even size
    keras_padding = _relative(backbone(images, training=False).numpy().mean((1, 2)), want)
    print(f"relative difference with Keras' epsilon {keras_epsilon:.3g}, "
          f"with Keras' padding {keras_padding:.3g}")
    assert keras_epsilon > 1e-2 and keras_padding > 1e-2

    assert card == json.loads((tmp_path / "zoobot_rgb.json").read_text())
    assert card["source"]["file"] == "pytorch_model.bin" and len(card["source"]["sha256"]) == 64
    assert (card["architecture"], card["channels"], card["bn_epsilon"], card["padding"]) == (
        "efficientnet_b0", 3, 1e-5, "pytorch_symmetric")
    assert card["input_scaling"]["range"] == [0.0, 1.0]
    assert card["input_scaling"]["keras_normalization"] == {"mean": [0.0] * 3,
                                                            "variance": [1.0] * 3}
    assert card["greyscale"] is None
    assert card["tensors"] == 309 and all("num_batches_tracked" in k
                                          for k in card["ignored_keys"])


def test_greyscale_summed_stem_equals_timm_fed_the_grey_image_in_all_three_channels(
        torch_timm, timm_b0, tmp_path):
    torch, _ = torch_timm
    model, state_dict = timm_b0
    dest = tmp_path / "zoobot.weights.h5"
    card = timm_to_keras.convert(state_dict, dest, channels=1)
    size = 224
    classifier = build_model("b0", 6, size, "xai", weights=str(dest))
    features = keras.Model(classifier.input, classifier.get_layer("avg_pool_head").output)
    grey = _images((2, size, size, 1), seed=2)
    want = _timm_pooled(torch, model, np.repeat(grey, 3, axis=-1))
    got = features.predict(grey, verbose=0)
    error = _relative(got, want)
    print(f"\ngreyscale parity: max |diff| {np.abs(got - want).max():.3g}, relative {error:.3g}")
    assert error < TOLERANCE
    assert card["greyscale"]["exact"] and card["channels"] == 1
    stem = classifier.get_layer("stem_conv").get_weights()[0]
    np.testing.assert_allclose(
        stem[..., 0, :], model.conv_stem.weight.detach().numpy().sum(1).transpose(1, 2, 0),
        rtol=1e-6, atol=1e-7)


def test_config_mean_std_go_into_the_normalization_layer(torch_timm, tmp_path):
    torch, timm = torch_timm
    model = _calibrated(torch, timm, seed=10, **IMAGENET)
    state_dict = tmp_path / "imagenet_like.bin"
    torch.save(model.state_dict(), state_dict)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "efficientnet_b0", "num_classes": 0,
                                  "pretrained_cfg": IMAGENET}))
    size = 64
    mean, std = np.array(IMAGENET["mean"]), np.array(IMAGENET["std"])

    rgb = tmp_path / "rgb.weights.h5"
    timm_to_keras.convert(state_dict, rgb, config_json=config, channels=3, scaling="config")
    backbone = _backbone("b0", keras.Input((size, size, 3)), str(rgb))
    norm = next(la for la in backbone.layers if isinstance(la, keras.layers.Normalization))
    np.testing.assert_allclose(norm.get_weights()[1], std**2, rtol=1e-6)
    images = _images((2, size, size, 3), seed=3)
    want = _timm_pooled(torch, model, ((images - mean) / std).astype(np.float32))
    assert _relative(backbone(images, training=False).numpy().mean((1, 2)), want) < TOLERANCE

    # Greyscale with unequal channel means: exact except the stem's first row and column.
    grey = tmp_path / "grey.weights.h5"
    card = timm_to_keras.convert(state_dict, grey, config_json=config, channels=1,
                                scaling="config")
    assert not card["greyscale"]["exact"] and "first row and column" in card["greyscale"][
        "inexact_where"]
    classifier = build_model("b0", 6, size, "xai", weights=str(grey))
    stem = keras.Model(classifier.input, classifier.get_layer("stem_activation").output)
    g = _images((2, size, size, 1), seed=4)
    with torch.no_grad():
        x = torch.from_numpy(((np.repeat(g, 3, -1) - mean) / std).astype(np.float32)
                             .transpose(0, 3, 1, 2).copy())
        want = model.bn1(model.conv_stem(x)).numpy().transpose(0, 2, 3, 1)
    got = stem.predict(g, verbose=0)
    assert _relative(got[:, 1:, 1:], want[:, 1:, 1:]) < TOLERANCE
    assert _relative(got[:, :1], want[:, :1]) > 1e-3


def test_stem_statistics_reveal_the_training_input_scale(torch_timm, timm_b0):
    torch, timm = torch_timm
    state = torch_pickle.read_state_dict(timm_b0[1])  # calibrated on U[0, 1] images
    images = _images((4, 64, 64, 3), seed=11)
    assert 0.7 < timm_to_keras.estimate_input_scale(state, images) < 1.4
    assert 0.7 < timm_to_keras.estimate_input_scale(state, images[..., :1]) < 1.4
    tiny = _calibrated(torch, timm, seed=12, std=255.0)  # trained on [0, 1/255]
    scale = timm_to_keras.estimate_input_scale(
        {k: v.numpy() for k, v in tiny.state_dict().items()}, images)
    assert 0.7 / 255 < scale < 1.4 / 255


def test_tf_efficientnet_b0_keeps_keras_numerics(torch_timm, tmp_path):
    torch, timm = torch_timm
    model = _calibrated(torch, timm, "tf_efficientnet_b0", seed=5)
    torch.save(model.state_dict(), tmp_path / "tf.bin")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "tf_efficientnet_b0"}))
    card = timm_to_keras.convert(tmp_path / "tf.bin", tmp_path / "tf.weights.h5",
                                config_json=config, channels=3)
    assert (card["padding"], card["bn_epsilon"]) == ("keras_correct_pad", 1e-3)
    size = 64
    backbone = _backbone("b0", keras.Input((size, size, 3)), str(tmp_path / "tf.weights.h5"))
    images = _images((2, size, size, 3), seed=6)
    got = backbone(images, training=False).numpy().mean((1, 2))
    assert _relative(got, _timm_pooled(torch, model, images)) < TOLERANCE


def test_saved_model_keeps_the_timm_numerics(timm_b0, tmp_path):
    _, state_dict = timm_b0
    timm_to_keras.convert(state_dict, tmp_path / "z.weights.h5", channels=1)
    model = build_model("b0", 6, 64, "standard", weights=str(tmp_path / "z.weights.h5"))
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    images = _images((2, 64, 64, 1), seed=7)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    inner = reloaded.get_layer("efficientnetb0")
    assert inner.get_layer("stem_bn").epsilon == 1e-5
    assert tuple(map(tuple, inner.get_layer("block2a_dwconv_pad").padding)) == ((1, 1), (1, 1))
    assert tuple(map(tuple, inner.get_layer("block3a_dwconv_pad").padding)) == ((2, 2), (2, 2))


def test_the_card_also_travels_inside_the_weights_file(timm_b0, tmp_path):
    card = timm_to_keras.convert(timm_b0[1], tmp_path / "z.weights.h5", channels=1)
    (tmp_path / "z.json").unlink()
    assert weights_card.read_card(tmp_path / "z.weights.h5") == card
    model = build_model("b0", 6, 32, "xai", weights=str(tmp_path / "z.weights.h5"))
    assert model.get_layer("top_bn").epsilon == 1e-5
    keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 1)
                                      ).save_weights(tmp_path / "plain.weights.h5")
    assert weights_card.read_card(tmp_path / "plain.weights.h5") is None


def test_a_full_disk_leaves_the_earlier_weights_and_no_partial_file(tmp_path):
    dest = tmp_path / "zoobot.weights.h5"
    dest.write_bytes(b"earlier weights")

    class DiskFillsUp:  # a model whose save_weights runs out of space half-way
        def save_weights(self, path):
            assert str(path).endswith(".weights.h5")  # Keras insists on the suffix
            Path(path).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=f"cannot write {dest}: no space left on device"):
        weights_card.save(DiskFillsUp(), dest, {"format": weights_card.CARD_FORMAT})
    assert dest.read_bytes() == b"earlier weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoobot.weights.h5"]


def test_converted_colour_weights_refuse_the_greyscale_model(timm_b0, tmp_path):
    _, state_dict = timm_b0
    timm_to_keras.convert(state_dict, tmp_path / "rgb.weights.h5", channels=3)
    with pytest.raises(ValueError, match="converted for 3 input channels; this backbone takes 1"):
        build_model("b0", 6, 32, "xai", weights=str(tmp_path / "rgb.weights.h5"))


# --- reading the pickle safely -------------------------------------------------------------------

def _torch_like_zip(path, payload: bytes, storages=None):
    """An archive laid out like torch.save's: <name>/data.pkl, data/<n>, version, byteorder."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Evals:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return eval, (self.code,)


@pytest.mark.parametrize("payload", ["shell", "eval"])
def test_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = (_RunsShell(f"touch {marker}") if payload == "shell"
            else _Evals(f"open({str(marker)!r}, 'w').write('x')"))
    data = pickle.dumps(OrderedDict([("conv_stem.weight", evil)]), protocol=2)
    weights = tmp_path / "pytorch_model.bin"
    _torch_like_zip(weights, data)
    forbidden = "posix.system" if payload == "shell" else "builtins.eval"
    with pytest.raises(UnsafePickleError, match=rf"pytorch_model.bin: refused to load: the "
                                                rf"pickle asks for {forbidden}.*never needs"):
        torch_pickle.read_state_dict(weights)
    assert not marker.exists()
    assert main(["convert-weights", str(weights), str(tmp_path / "x.weights.h5")]) == 2
    assert not marker.exists() and not (tmp_path / "x.weights.h5").exists()
    pickle.loads(data)  # the payload is live: a plain unpickler runs it
    assert marker.exists()


def test_torch_saved_arbitrary_object_is_refused(torch_timm, tmp_path):
    torch, _ = torch_timm
    marker = tmp_path / "pwned"
    torch.save({"w": torch.zeros(2), "x": _RunsShell(f"touch {marker}")}, tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError, match="posix.system"):
        torch_pickle.read_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()


def test_reads_torch_tensors_exactly_without_torch_code(torch_timm, tmp_path):
    torch, _ = torch_timm
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = OrderedDict([
        ("plain", torch.randn(3, 2, 5)),
        ("transposed_view", base.t()),  # shares storage, non-contiguous strides
        ("offset_view", base[1:3, 2:5]),
        ("long", torch.tensor(7)),
        ("half", torch.randn(4).half()),
        ("bfloat16", torch.randn(4).bfloat16()),
        ("empty", torch.zeros(0, 3)),
    ])
    torch.save(tensors, tmp_path / "t.pt")
    got = torch_pickle.read_state_dict(tmp_path / "t.pt")
    assert list(got) == list(tensors)
    for key, tensor in tensors.items():
        want = tensor.float().numpy() if key == "bfloat16" else tensor.numpy()
        assert got[key].shape == want.shape and got[key].dtype == want.dtype, key
        np.testing.assert_array_equal(got[key], want)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    # Hand-written: OrderedDict([("w", _rebuild_tensor_v2(storage, 0, (100,), (1,), ...))])
    payload = (b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
               b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
               b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
               b"K\x00Kd\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRu.")
    _torch_like_zip(tmp_path / "w.bin", payload, {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(ConversionError, match="reads past its storage"):
        torch_pickle.read_state_dict(tmp_path / "w.bin")


def test_a_file_that_is_not_a_torch_zip_gets_a_clear_error(tmp_path):
    (tmp_path / "old.bin").write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.")
    with pytest.raises(ConversionError, match="legacy .pre-1.6. format"):
        torch_pickle.read_state_dict(tmp_path / "old.bin")


def test_a_truncated_download_is_called_incomplete_and_to_be_downloaded_again(tmp_path):
    whole = tmp_path / "whole.bin"
    _torch_like_zip(whole, pickle.dumps(OrderedDict(), protocol=2),
                    {"0": np.zeros(1000, "<f4").tobytes()})
    cut = tmp_path / "pytorch_model.bin"
    cut.write_bytes(whole.read_bytes()[:2500])  # the central directory at the end is lost
    with pytest.raises(ConversionError) as error:
        timm_to_keras.convert(cut, tmp_path / "z.weights.h5",
                              asked_by="config models.b0.weights='hf_hub:owner/encoder'")
    message = str(error.value)
    assert f"{cut} looks incomplete (2,500 bytes)" in message
    assert "truncated download" in message and "download it again" in message
    assert "config models.b0.weights='hf_hub:owner/encoder' asks for it" in message
    assert "download_weights rule" in message
    assert not (tmp_path / "z.weights.h5").exists()


def test_a_file_of_another_kind_says_what_it_is(tmp_path):
    (tmp_path / "page.bin").write_text("<!DOCTYPE html><html>Sign in to continue</html>")
    with pytest.raises(ConversionError, match=r"page.bin is an HTML page, not a PyTorch "
                                              r"state_dict; expected one saved by torch.save"):
        torch_pickle.read_state_dict(tmp_path / "page.bin")


# --- wrong or partial state_dicts ----------------------------------------------------------------

def _save_numpy_state_dict(torch, state, path):
    torch.save(OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v)))
                           for k, v in state.items()), path)


def test_wrong_or_partial_state_dict_errors_name_the_key(torch_timm, timm_b0, tmp_path):
    torch, _ = torch_timm
    state = torch_pickle.read_state_dict(timm_b0[1])
    dest = tmp_path / "x.weights.h5"

    partial = {k: v for k, v in state.items() if k != "blocks.3.1.conv_dw.weight"}
    _save_numpy_state_dict(torch, partial, tmp_path / "partial.bin")
    with pytest.raises(ConversionError, match=r"partial.bin: state_dict lacks "
                                              r"'blocks.3.1.conv_dw.weight' \(for Keras layer "
                                              r"block4b_dwconv\)"):
        timm_to_keras.convert(tmp_path / "partial.bin", dest)

    wrong = dict(state, **{"blocks.2.0.bn1.running_var": np.ones(7, np.float32)})
    _save_numpy_state_dict(torch, wrong, tmp_path / "wrong.bin")
    with pytest.raises(ConversionError, match=r"'blocks.2.0.bn1.running_var' has shape \(7,\), "
                                              r"expected \(144,\) for Keras layer block3a_expand_bn"):
        timm_to_keras.convert(tmp_path / "wrong.bin", dest)

    extra = dict(state, **{"head.fc.weight": np.ones((2, 2), np.float32)})
    _save_numpy_state_dict(torch, extra, tmp_path / "extra.bin")
    with pytest.raises(ConversionError, match=r"unexpected keys \['head.fc.weight'\]"):
        timm_to_keras.convert(tmp_path / "extra.bin", dest)

    prefixed = {f"encoder.{k}": v for k, v in state.items()}
    _save_numpy_state_dict(torch, prefixed, tmp_path / "prefixed.bin")
    with pytest.raises(ConversionError, match=r"prefix \('encoder.'\)"):
        timm_to_keras.convert(tmp_path / "prefixed.bin", dest)
    assert not dest.exists()

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "convnext_nano"}))
    with pytest.raises(ConversionError, match="architecture 'convnext_nano' is not supported"):
        timm_to_keras.convert(timm_b0[1], dest, config_json=config)


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_convert_weights_writes_a_file_the_b0_model_loads(timm_b0, tmp_path, capsys):
    _, state_dict = timm_b0
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "efficientnet_b0", "pretrained_cfg": IMAGENET}))
    dest = tmp_path / "weights" / "zoobot.weights.h5"
    assert main(["convert-weights", str(state_dict), str(dest), "--config", str(config),
                 "--channels", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    card = json.loads((tmp_path / "weights" / "zoobot.json").read_text())
    assert card["source"]["config_json"] == "config.json"
    assert card["input_scaling"]["scheme"] == "zoobot"  # config mean/std recorded, not applied
    assert card["input_scaling"]["config_mean"] == IMAGENET["mean"]
    model = build_model("b0", 6, 64, "standard", weights=str(dest))
    assert model.predict(_images((1, 64, 64, 1)), verbose=0).shape == (1, 6)
    assert main(["convert-weights", str(tmp_path / "missing.bin"), str(dest)]) == 2


# --- legacy Zoobot TF checkpoint -----------------------------------------------------------------

def _legacy_checkpoint(source, prefix):
    """An object-based checkpoint shaped like legacy Zoobot's `model.save_weights`: the outer
    Sequential's layer_with_weights-0 is the headless Sequential, whose layer_with_weights-0 is the
    EfficientNet; variables keep tf.keras 2 names (`block1a_dwconv/depthwise_kernel`); plus the
    head and an optimizer slot, which must be ignored."""
    import tensorflow as tf

    effnet, wrapper = tf.Module(), tf.Module()
    setattr(wrapper, "layer_with_weights-0", effnet)
    layers = [la for la in source.layers
              if la.weights and not isinstance(la, keras.layers.Normalization)]
    for i, layer in enumerate(layers):
        node = tf.Module()
        for weight in layer.weights:
            name = weight.name.rsplit("/", 1)[-1]
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                name = "depthwise_kernel"
            setattr(node, name, tf.Variable(weight.numpy(), name=f"{layer.name}/{name}"))
        setattr(effnet, f"layer_with_weights-{i}", node)
    head, optimizer = tf.Module(), tf.Module()
    head.kernel = tf.Variable(np.ones((1280, 34), np.float32), name="dense/kernel")
    optimizer.slot = tf.Variable(np.ones((3, 3, 1, 32), np.float32), name="Adam/stem_conv/kernel/m")
    tf.train.Checkpoint(**{"layer_with_weights-0": wrapper, "layer_with_weights-1": head,
                           "optimizer": optimizer}).write(str(prefix))


def test_legacy_tf_checkpoint_maps_by_variable_name(tmp_path):
    source = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                               input_shape=(64, 64, 1))
    rng = np.random.default_rng(8)
    for layer in source.layers:  # kernels keep their (random) initialisation
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n),
                               rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)])
    _legacy_checkpoint(source, tmp_path / "checkpoints" / "checkpoint")
    dest = tmp_path / "legacy.weights.h5"
    assert main(["convert-weights", str(tmp_path / "checkpoints" / "checkpoint"),
                 str(dest)]) == 0
    card = json.loads((tmp_path / "legacy.json").read_text())
    assert (card["padding"], card["bn_epsilon"], card["channels"]) == ("keras_correct_pad",
                                                                       1e-3, 1)
    assert card["ignored_keys"] == ["Adam/stem_conv/kernel/m", "dense/kernel"]
    backbone = _backbone("b0", keras.Input((64, 64, 1)), str(dest))
    images = _images((2, 64, 64, 1), seed=9)
    # `source` is Keras' default B0 (x/255 inside); ours feeds [0, 1] like legacy Zoobot.
    np.testing.assert_allclose(backbone.predict(images, verbose=0),
                               source.predict(images * 255, verbose=0), rtol=1e-4, atol=1e-5)

    (tmp_path / "broken").mkdir()
    without_top_bn = types.SimpleNamespace(
        layers=[la for la in source.layers if la.name != "top_bn"])
    _legacy_checkpoint(without_top_bn, tmp_path / "broken" / "checkpoint")
    with pytest.raises(ConversionError, match="lacks variable 'top_bn/gamma'"):
        tf_checkpoint.convert_tf_checkpoint(tmp_path / "broken" / "checkpoint",
                                           tmp_path / "b.weights.h5")
