"""Predictions as FITS binary tables and VOTables (spiralarms.predict.astro_tables), read back with
astropy and checked against TOPCAT's conventions: plain column names, no object columns, fixed-width
text, units, UCDs and descriptions; a catalogue's ra/dec carried over by row."""

import re

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

from spiralarms.predict.astro_tables import (
    TableFormatError,
    plain_class,
    with_positions,
    write_table,
)
from spiralarms.predict.records import write_predictions

CARD = {"model": "b0", "mode": "standard", "classes": "merge45",
        "class_names": ["1", "2", "3", "4+", "?"], "image_size": 64, "crop_size": 224}
PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def predictions(rows=(0, 2, 3)) -> pd.DataFrame:
    """A table as `predict` returns it (catalogue input: row, id, file, path, ...)."""
    n = len(rows)
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(5), n).astype(np.float32)
    table = pd.DataFrame({
        "row": np.asarray(rows, np.int64), "id": [f"J{r:04d}+1" for r in rows],
        "file": [f"cut/{r}.jpg" for r in rows], "path": [f"/data/cut/{r}.jpg" for r in rows],
        "width": np.full(n, 424, np.int64), "height": np.full(n, 424, np.int64),
        "mode": ["RGB"] * n, "pred_index": proba.argmax(1).astype(np.int64),
        "pred_name": [CARD["class_names"][i] for i in proba.argmax(1)],
        "pred_label": ["can't tell" if i == 4 else "x arms" for i in proba.argmax(1)],
        "p_max": proba.max(1), "entropy": np.ones(n, np.float32)})
    for i, name in enumerate(CARD["class_names"]):
        table[f"prob_{name}"] = proba[:, i]
        table[f"std_{name}"] = np.float32(0.01 * i)
    table.attrs = {"model_card": CARD, "tta": 4}
    return table


def catalogue(path):
    """Four rows; row 1 is not predicted, row 3 has an ra that is not a number."""
    pd.DataFrame({"id_str": ["J0000+1", "J0001+1", "J0002+1", "J0003+1"],
                  "file_loc": [f"cut/{r}.jpg" for r in range(4)],
                  "ra": ["10.5", "11", "350.25", "n/a"], "dec": [-1.5, 0, 89.9, 3]}
                 ).to_csv(path, index=False)
    return path


def test_class_names_become_plain_column_names():
    assert [plain_class(n) for n in ["1", "3-4", "4+", "5+", "?"]] == [
        "1", "3to4", "4plus", "5plus", "cant_tell"]


@pytest.mark.parametrize("suffix", [".fits", ".vot"])
def test_tables_read_back_with_astropy_in_topcats_conventions(tmp_path, suffix):
    table = predictions()
    out = write_table(table, tmp_path / f"p{suffix}", CARD, 4, catalogue(tmp_path / "c.csv"))

    back = Table.read(out)
    assert all(PLAIN.fullmatch(name) for name in back.colnames), back.colnames
    assert back.colnames[:4] == ["row", "id", "ra", "dec"]
    assert "prob_cant_tell" in back.colnames and "std_4plus" in back.colnames
    assert not any(back[c].dtype == object for c in back.colnames)
    assert [str(v) for v in back["id"]] == table["id"].tolist()
    np.testing.assert_array_equal(back["ra"], [10.5, 350.25, np.nan])  # by row; 'n/a' -> NaN
    np.testing.assert_array_equal(back["dec"], [-1.5, 89.9, 3.0])
    np.testing.assert_array_equal(back["prob_4plus"], table["prob_4+"])
    assert (back["ra"].unit, back["width"].unit) == ("deg", "pix")
    if suffix == ".vot":  # FITS keeps descriptions in TCOMMn, which astropy does not read
        assert back["prob_cant_tell"].description == "Probability of class can't tell"
        assert all(back[c].description for c in back.colnames)


def test_fits_is_a_binary_table_with_fixed_width_text_ucds_and_the_model(tmp_path):
    out = write_table(predictions(), tmp_path / "p.fits", CARD, 4, catalogue(tmp_path / "c.csv"))

    with fits.open(out) as hdus:
        assert isinstance(hdus[1], fits.BinTableHDU) and hdus[1].name == "PREDICTIONS"
        header, columns = hdus[1].header, hdus[1].columns
        formats = dict(zip(columns.names, columns.formats))
        assert formats["id"] == "7A" and formats["pred_label"].endswith("A")  # fixed-width
        assert (formats["ra"], formats["row"], formats["prob_1"]) == ("D", "K", "E")
        ucds = {header[f"TTYPE{i}"]: header.get(f"TUCD{i}") for i in range(1, len(columns) + 1)}
        assert ucds["ra"] == "pos.eq.ra;meta.main" and ucds["dec"] == "pos.eq.dec;meta.main"
        assert ucds["id"] == "meta.id;meta.main" and ucds["prob_2"] == "stat.probability"
        assert header["TCOMM3"].startswith("Right ascension")
        assert all(header[f"TCOMM{i}"] for i in range(1, len(columns) + 1))
        assert "prob_cant_tell" in columns.names and any(
            header[k] == "Probability of class can't tell" for k in header["TCOMM*"])
        assert (header["MODEL"], header["CLASSES"], header["TTA"]) == ("b0", "merge45", 4)


def test_votable_fields_have_ucds_units_and_fixed_width_chars(tmp_path):
    out = write_table(predictions(), tmp_path / "p.vot", CARD, 4, catalogue(tmp_path / "c.csv"))

    fields = {f.name: f for f in parse_single_table(str(out)).fields}
    assert (fields["ra"].ucd, str(fields["ra"].unit)) == ("pos.eq.ra;meta.main", "deg")
    assert fields["id"].datatype == "char" and fields["id"].arraysize == "7"
    assert fields["std_cant_tell"].ucd == "stat.stdev;stat.probability"
    assert fields["p_max"].datatype == "float" and fields["row"].datatype == "long"


def test_without_positions_in_the_input_there_are_no_position_columns(tmp_path):
    pd.DataFrame({"id_str": ["a"], "file_loc": ["a.jpg"]}).to_csv(tmp_path / "c.csv", index=False)
    table = predictions(rows=(0,))
    assert with_positions(table, tmp_path / "c.csv") is table
    assert with_positions(table, None) is table
    folder_input = table.drop(columns="row")  # a folder of images: no catalogue rows
    assert with_positions(folder_input, tmp_path / "c.csv") is folder_input
    back = Table.read(write_table(folder_input, tmp_path / "p.fits", CARD, 1))
    assert "ra" not in back.colnames and back.colnames[0] == "id"


def test_write_predictions_writes_by_suffix_and_lists_the_skipped(tmp_path):
    skipped = [{"row": 1, "id": "J0001+1", "file": "cut/1.jpg", "path": "/data/cut/1.jpg",
                "code": "missing_file", "reason": "file not found"}]
    written = write_predictions(predictions(), skipped, tmp_path / "out.vot",
                                catalog=catalogue(tmp_path / "c.csv"))
    assert written == [tmp_path / "out.vot", tmp_path / "out.skipped.csv"]
    assert len(Table.read(written[0])) == 3
    with pytest.raises(TableFormatError, match=r"\.fits .*or \.vot"):
        write_table(predictions(), tmp_path / "out.xml", CARD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "out.skipped.csv", "out.vot"]


def test_cli_predict_to_fits_carries_ids_positions_and_probabilities(images, tmp_path):
    from tiny_models import GOOD, save_small_network

    from spiralarms.cli import main

    model_path = save_small_network(tmp_path / "model")

    names = GOOD[:3]
    pd.DataFrame({"id_str": [f"g{i}" for i in range(len(names))],
                  "file_loc": [str(images / n) for n in names],
                  "ra": np.arange(len(names)) + 1.0, "dec": -np.arange(len(names)) - 1.0}
                 ).to_csv(tmp_path / "cat.csv", index=False)

    assert main(["predict", "-q", "--model", str(model_path), "--catalog",
                 str(tmp_path / "cat.csv"), "-o", str(tmp_path / "p.fits")]) == 0

    back = Table.read(tmp_path / "p.fits")
    assert [str(v) for v in back["id"]] == [f"g{i}" for i in range(len(names))]
    np.testing.assert_array_equal(back["ra"], back["row"] + 1.0)
    probs = np.stack([back[c] for c in back.colnames if c.startswith("prob_")], axis=1)
    assert [c for c in back.colnames if c.startswith("prob_")][-2:] == ["prob_5plus",
                                                                       "prob_cant_tell"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), back["pred_index"])
