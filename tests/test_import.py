"""Importing a trained model: archives, safety checks, model card and provenance."""

import errno
import json
import shutil
import tarfile
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image
from tiny_models import CARD_SETTINGS, IMAGE_SIZE, galaxy_pixels, save_tiny_model

from spiralarms.acquire import UnsafeArchiveError, sha256_of
from spiralarms.atomic import OutputError
from spiralarms.cli import main
from spiralarms.data.variants import VARIANTS
from spiralarms.models import model_card
from spiralarms.models.networks import build_model
from spiralarms.predict.predictor import predict_images
from spiralarms.training.importer import ModelImportError, import_model

PROBS = [f"prob_{n}" for n in ("1", "2", "3", "4+", "?")]  # merge45


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model folder as training leaves it (model.keras + model.json, merge45 classes) and a
    folder with one galaxy image."""
    root = tmp_path_factory.mktemp("trained")
    model = save_tiny_model(root / "run", variant="merge45")
    (root / "images").mkdir()
    Image.fromarray(galaxy_pixels()).save(root / "images" / "galaxy.jpg")
    return model, root / "images"


def _zip(path, members: dict):
    with zipfile.ZipFile(path, "w") as archive:
        for name, source in members.items():
            if isinstance(source, bytes):
                archive.writestr(name, source)
            else:
                archive.write(source, name)
    return path


def _staging_left(folder):
    return [p for p in folder.iterdir() if p.name.endswith(".import")] if folder.exists() else []


def test_zip_with_model_and_card_imports_and_predicts_the_same(trained, tmp_path):
    model, images = trained
    archive = _zip(tmp_path / "shared.zip", {"run/model.keras": model,
                                             "run/model.json": model.with_name("model.json")})
    experiments = tmp_path / "experiments"
    target = import_model(archive, experiments / "from_colleague")
    assert target == experiments / "from_colleague" / "model.keras"
    card = json.loads(target.with_name("model.json").read_text())
    assert card == json.loads(model.with_name("model.json").read_text())  # the archive's card
    provenance = json.loads(target.with_name("imported.json").read_text())
    assert provenance["source"] == str(archive) and provenance["member"] == "run/model.keras"
    assert provenance["sha256"] == sha256_of(model) == sha256_of(target)
    assert provenance["source_sha256"] == sha256_of(archive) and provenance["imported_at"]
    original, _ = predict_images(model, [images])
    imported, _ = predict_images(target, [images])
    # merge45 class names came along with the archive's card, and the network is the same
    np.testing.assert_array_equal(imported[PROBS].to_numpy(), original[PROBS].to_numpy())
    assert _staging_left(experiments) == []


def test_bare_model_takes_its_card_from_the_folder_name(trained, tmp_path):
    model, _ = trained
    lone = tmp_path / "download" / "weights.keras"
    lone.parent.mkdir()
    shutil.copy(model, lone)
    target = import_model(lone, tmp_path / "b0_merge45_standard_s7")
    card = json.loads(target.with_name("model.json").read_text())
    assert card == {"model": "b0", "mode": "standard", "classes": "merge45",
                    "class_names": ["1", "2", "3", "4+", "?"], "image_size": 32, "crop_size": 224}
    assert json.loads(target.with_name("imported.json").read_text())["member"] is None


def test_folder_name_that_contradicts_the_network_is_refused(trained, tmp_path):
    model, _ = trained
    lone = tmp_path / "weights.keras"
    shutil.copy(model, lone)
    with pytest.raises(ModelImportError, match=r"variant 6class \(6 outputs\).*variant "
                                                r"merge34 or merge45 \(5 outputs\)"):
        import_model(lone, tmp_path / "b0_6class_standard_s7")  # 6 classes, the model has 5
    assert not (tmp_path / "b0_6class_standard_s7").exists()


def test_tar_gz_archive_and_explicit_card(trained, tmp_path):
    model, _ = trained
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model, "export/model.keras")
    target = import_model(archive, tmp_path / "mine", card={"classes": "merge45",
                                                           "crop_size": 160, "mode": "standard"})
    card = json.loads(target.with_name("model.json").read_text())
    assert (card["classes"], card["crop_size"], card["image_size"]) == ("merge45", 160, 32)


def test_path_traversal_member_is_refused_and_nothing_written(trained, tmp_path):
    model, _ = trained
    work = tmp_path / "work"
    work.mkdir()
    archive = _zip(work / "evil.zip", {"../evil.keras": model})
    experiment = work / "experiments" / "b0_merge45_standard_s1"
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        import_model(archive, experiment)
    assert not experiment.exists()
    assert not list(tmp_path.rglob("evil.keras"))
    assert _staging_left(experiment.parent) == []


def test_lambda_layer_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "sneaky.keras")
    experiment = tmp_path / "b0_6class_standard_s1"
    with pytest.raises(ModelImportError, match="refused by Keras safe mode.*Lambda"):
        import_model(tmp_path / "sneaky.keras", experiment)
    assert not (experiment / "model.keras").exists()


def test_archive_with_two_models_lists_them(trained, tmp_path):
    model, _ = trained
    archive = _zip(tmp_path / "two.zip", {"a/model.keras": model, "b/best.keras": model})
    with pytest.raises(ModelImportError, match=r"2 \.keras files \(a/model.keras, b/best.keras\)"):
        import_model(archive, tmp_path / "b0_merge45_standard_s1")


def test_tf_checkpoint_explains_the_conversion(tmp_path):
    archive = _zip(tmp_path / "finetune.zip", {
        "results/checkpoint": b'model_checkpoint_path: "finetune_minimal"\n',
        "results/finetune_minimal.index": b"\0" * 16,
        "results/finetune_minimal.data-00000-of-00001": b"\0" * 64,
        "__MACOSX/results/._model.keras": b"resource fork, not a model",
    })
    with pytest.raises(ModelImportError, match="no .keras model") as error:
        import_model(archive, tmp_path / "b0_6class_standard_s1")
    assert "finetune_minimal.index" in str(error.value) and "load_weights" in str(error.value)


def test_existing_model_is_kept_unless_forced(trained, tmp_path):
    model, _ = trained
    experiment = tmp_path / "b0_merge45_standard_s3"
    experiment.mkdir()
    (experiment / "model.keras").write_bytes(b"earlier model")
    with pytest.raises(ModelImportError, match="already exists"):
        import_model(model, experiment)
    assert (experiment / "model.keras").read_bytes() == b"earlier model"
    import_model(model, experiment, overwrite=True)
    assert sha256_of(experiment / "model.keras") == sha256_of(model)


def test_google_drive_source_goes_through_fetch_gdrive(trained, tmp_path, monkeypatch):
    model, _ = trained
    calls = []

    def fake_fetch(id_or_url, dest, sha256=None):
        calls.append((id_or_url, str(dest)))
        dest.mkdir(parents=True)
        return _zip(dest / "shared.zip", {"model.keras": model})

    monkeypatch.setattr("spiralarms.training.importer.fetch_gdrive", fake_fetch)
    link = "https://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view?usp=sharing"
    target = import_model(link, tmp_path / "b0_merge45_standard_s9")
    assert calls and calls[0][0] == link
    assert json.loads(target.with_name("imported.json").read_text())["source"] == link
    with pytest.raises(ModelImportError, match="local file or folder, gdrive:"):
        import_model("ftp://example.org/model.keras", tmp_path / "b0_merge45_standard_s10")


def test_unnamed_folder_without_card_needs_the_classes(trained, tmp_path):
    model, _ = trained
    lone = tmp_path / "weights.keras"
    shutil.copy(model, lone)
    with pytest.raises(ModelImportError, match="--classes"):
        import_model(lone, tmp_path / "colleague")
    target = import_model(lone, tmp_path / "colleague", card={"classes": "merge45"})
    card = json.loads(target.with_name("model.json").read_text())
    assert (card["model"], card["classes"], card["crop_size"]) == ("b0", "merge45", 224)


@pytest.fixture(scope="module")
def six_class_xai(tmp_path_factory):
    """A B0 6-class xai-mode model with the model.json training writes beside it."""
    folder = tmp_path_factory.mktemp("b0_6class_xai_s1")
    path = folder / "model.keras"
    build_model("b0", VARIANTS["6class"].n_classes, IMAGE_SIZE, "xai").save(path)
    model_card.write(path, "b0", VARIANTS["6class"], "xai", CARD_SETTINGS)
    return path


@pytest.mark.parametrize("name, wanted", [
    ("b0_select12_standard_s1", "model b0, variant select12 (2 outputs), mode standard"),
    ("v2m_select12_xai_s1", "model v2m, variant select12 (2 outputs), mode xai"),
])
def test_a_model_of_another_variant_is_refused_naming_both(six_class_xai, tmp_path, name, wanted):
    # Evaluation takes the variant from the folder name: imported, this model was scored as
    # select12 on 2 of its 6 outputs (accuracy 1.0), or died in a Keras shape error for v2m.
    experiment = tmp_path / "experiments" / name
    with pytest.raises(ModelImportError) as error:
        import_model(six_class_xai.parent, experiment)
    message = str(error.value)
    assert f"does not fit experiment {name}: that name means {wanted}" in message
    assert "the model is b0, variant 6class (6 outputs), mode xai" in message
    assert "model.json that came with it" in message
    assert f"{experiment.with_name('b0_6class_xai_s1')}" in message  # where it would fit
    assert not experiment.exists()
    assert _staging_left(experiment.parent) == []


def test_the_given_classes_must_agree_with_the_folder_name(trained, tmp_path):
    model, _ = trained  # merge45, and so is its card
    with pytest.raises(ModelImportError, match=r"the model is b0, variant 6class \(5 outputs\).*"
                                               r"from the model.json that came with it and the "
                                               r"given classes.*named for what it is"):
        import_model(model, tmp_path / "b0_merge45_standard_s2", card={"classes": "6class"})


def test_a_model_that_fits_its_experiment_name_imports(six_class_xai, tmp_path):
    target = import_model(six_class_xai.parent, tmp_path / "b0_6class_xai_s1")
    card = json.loads(target.with_name("model.json").read_text())
    assert (card["model"], card["classes"], card["mode"]) == ("b0", "6class", "xai")


@pytest.mark.parametrize("content, kind", [
    (b"model weights, honest\n", "a text file (starting 'model weights, honest')"),
    (b"", "an empty file (0 bytes)"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file"),
])
def test_cli_import_of_a_file_that_is_not_a_keras_model_says_what_it_is(tmp_path, capsys,
                                                                          content, kind):
    fake = tmp_path / "model.keras"
    fake.write_bytes(content)
    experiment = tmp_path / "b0_6class_standard_s1"
    assert main(["import-model", str(fake), "--experiment-dir", str(experiment)]) != 0
    err = capsys.readouterr().err
    assert f"{fake} is not a Keras model: it is {kind}, not the zip archive that " in err
    assert "model.save('model.keras')" in err and "File not found" not in err
    assert not experiment.exists()


def test_a_file_that_is_neither_model_nor_archive_says_what_it_is(tmp_path):
    jpeg = tmp_path / "galaxy.jpg"
    Image.fromarray(galaxy_pixels(64)).save(jpeg)
    with pytest.raises(ModelImportError, match=r"galaxy.jpg is a JPEG image, neither a .keras "
                                               r"model nor a zip/tar archive nor a folder"):
        import_model(jpeg, tmp_path / "b0_6class_standard_s1")


def test_a_full_disk_leaves_no_model_that_reads_as_imported(trained, tmp_path, monkeypatch):
    model, _ = trained
    experiment = tmp_path / "b0_merge45_standard_s4"
    import_model(model, experiment)
    real_copy = shutil.copyfile

    def disk_fills_half_way(source, dest):
        real_copy(source, dest)
        with open(dest, "r+b") as stream:
            stream.truncate(1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("spiralarms.training.importer.shutil.copyfile", disk_fills_half_way)
    with pytest.raises(OutputError, match=f"cannot write {experiment / 'model.keras'}: no space "
                                          f"left on device"):
        import_model(model, experiment, overwrite=True)
    # neither the half copy nor the replaced model (which the new card no longer describes)
    assert sorted(p.name for p in experiment.iterdir()) == ["imported.json", "model.json"]
    assert _staging_left(experiment.parent) == []
