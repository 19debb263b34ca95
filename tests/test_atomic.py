"""Atomic output (spiralarms.atomic): a file or folder appears complete or not at all."""
import errno
import os

import pytest
from disk_support import fill, full_folder, read_only_folder

from spiralarms import atomic
from spiralarms.atomic import OutputError


def test_a_failing_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old complete result\n")
    with pytest.raises(RuntimeError), atomic.replacing(target) as partial:
        partial.write_text("half of the new")
        raise RuntimeError("writer died")
    assert target.read_text() == "old complete result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failing_first_write_leaves_nothing_at_the_final_path(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), atomic.replacing(target) as partial:
        partial.write_bytes(b"PAR1")
        assert not target.exists()  # readers never see the file being written
        raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []


def test_a_complete_write_replaces_the_file(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_text(target, "old")
    atomic.write_json(target, {"accuracy": 0.9})
    assert target.read_text() == '{\n  "accuracy": 0.9\n}\n'
    atomic.write_bytes(target, b"x")
    assert target.read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_no_space_left_on_device_names_the_final_path(tmp_path):
    # /dev/full answers every write with the kernel's real ENOSPC.
    target = tmp_path / "predictions.csv"
    with pytest.raises(OutputError) as caught, atomic.replacing(target) as partial:
        partial.write_text("started")
        with open("/dev/full", "wb") as device:
            device.write(b"row\n" * 1000)
            device.flush()
    assert caught.value.errno == errno.ENOSPC
    assert str(target) in str(caught.value)
    assert "no space left on device" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_full_filesystem_keeps_the_old_file(tmp_path):
    with full_folder(tmp_path) as full:
        target = full / "out.csv"
        # The old result was written before the disk filled up (the ballast leaves no byte free).
        (full / ".ballast").unlink()
        target.write_text("old\n")
        fill(full)
        with pytest.raises(OutputError, match="no space left on device") as caught:
            atomic.write_text(target, "a new result much larger than the free space\n" * 50_000)
        assert str(target) in str(caught.value)
        assert target.read_text() == "old\n"
        assert sorted(p.name for p in full.iterdir()) == [".ballast", "out.csv"]


def test_replacing_dir_swaps_only_a_complete_folder(tmp_path):
    dataset = tmp_path / "predictions"
    with atomic.replacing_dir(dataset) as partial:
        (partial / "part-0.parquet").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.replacing_dir(dataset) as partial:
        (partial / "part-0.parquet").write_bytes(b"new, half")
        raise RuntimeError("gather died")
    assert [p.read_bytes() for p in dataset.iterdir()] == [b"old"]
    with atomic.replacing_dir(dataset) as partial:
        (partial / "part-1.parquet").write_bytes(b"new")
    assert sorted(p.name for p in dataset.iterdir()) == ["part-1.parquet"]
    assert [p.name for p in tmp_path.iterdir()] == ["predictions"]


def test_check_writable_creates_the_folder(tmp_path):
    folder = tmp_path / "a" / "b"
    assert atomic.check_writable(folder) == folder
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_read_only_folder_is_refused_naming_it(tmp_path):
    folder = read_only_folder(tmp_path)
    with pytest.raises(OutputError, match="not writable") as caught:
        atomic.check_writable(folder)
    assert str(folder) in str(caught.value)


def test_a_folder_below_a_file_is_refused_naming_it(tmp_path):
    (tmp_path / "report.txt").write_text("a file")
    with pytest.raises(OutputError, match="is a file, not a folder") as caught:
        atomic.check_writable(tmp_path / "report.txt" / "out")
    assert str(tmp_path / "report.txt") in str(caught.value)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        atomic.check_writable(tmp_path / "report.txt")


def test_the_partial_name_is_hidden_and_per_process(tmp_path):
    partial = atomic.partial_name(tmp_path / "out.csv")
    assert partial.parent == tmp_path
    assert partial.name == f".out.csv.partial-{os.getpid()}"


def test_a_writer_that_needs_a_suffix_gets_it(tmp_path):
    target = tmp_path / "best.weights.h5"
    with atomic.replacing(target, suffix=".weights.h5") as partial:
        assert partial.name.endswith(".weights.h5") and partial.name.startswith(".best.")
        partial.write_bytes(b"h5")
    assert [p.name for p in tmp_path.iterdir()] == ["best.weights.h5"]
