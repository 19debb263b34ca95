import json

import pandas as pd
import pytest
from report_support import (
    known_pair,
    subset_metrics,
    training_record,
    with_ordinal,
    write_nested,
    write_predictions,
)

from spiralarms.data.variants import display_name
from spiralarms.report import aggregate, summary, tables
from spiralarms.report.overview import NOTEBOOK_ROW, overview_figure


@pytest.fixture
def three_runs(tmp_path):
    return [
        write_nested(tmp_path, "b0_6class_standard_s42", subset_metrics(0.80, 0.70, f1_first=0.4),
                     test=subset_metrics(0.75, 0.60)),
        write_nested(tmp_path, "b0_6class_standard_s43", subset_metrics(0.90, 0.74, f1_first=0.6)),
        write_nested(tmp_path, "v2m_merge34_xai_s42",
                     subset_metrics(0.85, 0.72, class_names=["1", "2", "3-4", "5+", "?"])),
    ]


def test_experiment_columns_of_a_name():
    assert summary.experiment_columns("b0_6class_standard_s42") == {
        "model": "b0", "classes": "6class", "mode": "standard", "target": "labels", "seed": 42,
        "split": "base"}
    assert summary.experiment_columns("b0_6class_xai_s42_split7")["split"] == "split7"
    assert summary.experiment_columns("b0_6class_xai_votes_s42")["target"] == "votes"
    with pytest.raises(ValueError, match="not of the form"):
        summary.experiment_columns("b0-6class-42")
    with pytest.raises(ValueError, match="not of the form"):  # the one parser: modes are known
        summary.experiment_columns("v2m_merge45_heldout_test_s7")


def test_collect_nested_form_one_row_per_experiment_and_subset(three_runs):
    table = summary.collect(three_runs)
    assert list(zip(table["experiment"], table["subset"])) == [
        ("b0_6class_standard_s42", "test"), ("b0_6class_standard_s42", "val"),
        ("b0_6class_standard_s43", "val"), ("v2m_merge34_xai_s42", "val")]
    val42 = table.iloc[1]
    assert (val42["model"], val42["classes"], val42["mode"], val42["seed"]) == (
        "b0", "6class", "standard", 42)
    assert val42["accuracy"] == 0.80 and val42["macro_f1"] == 0.70
    assert val42["accuracy_ci_low"] == pytest.approx(0.75)
    assert val42["macro_f1_ci_high"] == pytest.approx(0.78)
    assert val42["f1_1"] == 0.4 and val42["support_?"] == 10
    assert pd.isna(val42["f1_3-4"])  # class of another variant
    assert table.iloc[3]["f1_3-4"] == 0.65
    assert json.loads(val42["confusion_matrix"])[0][0] == 10


def test_collect_names_the_file_and_key_of_bad_input(tmp_path, three_runs):
    broken = tmp_path / "b0_6class_standard_s50.json"
    metrics = subset_metrics(0.8, 0.7)
    del metrics["per_class"]
    broken.write_text(json.dumps({"experiment": "b0_6class_standard_s50",
                                  "subsets": {"val": metrics}}))
    with pytest.raises(KeyError, match=r"b0_6class_standard_s50\.json.*'val'.*per_class"):
        summary.collect([broken])
    with pytest.raises(ValueError, match="appears in both"):
        summary.collect([three_runs[0], three_runs[0]])
    flat = tmp_path / "flat.json"  # compute_metrics output alone, without evaluate's envelope
    flat.write_text(json.dumps(subset_metrics(0.8, 0.7) | {"subset": "val"}))
    with pytest.raises(KeyError, match=r"flat\.json lacks \['experiment', 'subsets'\]"):
        summary.collect([flat])


def test_seed_summary_mean_and_std_over_seeds(three_runs):
    seeds = summary.seed_summary(summary.collect(three_runs)).set_index(
        ["model", "classes", "mode", "subset"])
    b0_val = seeds.loc[("b0", "6class", "standard", "val")]
    assert b0_val["n_seeds"] == 2 and b0_val["seeds"] == "42,43"
    assert b0_val["accuracy_mean"] == pytest.approx(0.85)
    assert b0_val["accuracy_std"] == pytest.approx(0.1 / 2 ** 0.5)  # sample std of 0.8, 0.9
    assert b0_val["f1_1_mean"] == pytest.approx(0.5)
    single = seeds.loc[("b0", "6class", "standard", "test")]
    assert single["n_seeds"] == 1 and pd.isna(single["accuracy_std"])


def test_write_tables_csv_markdown_and_booktabs(tmp_path, three_runs):
    table = summary.collect(three_runs)
    written = summary.write_tables(table, tmp_path / "tables")
    assert sorted(p.name for p in written) == sorted(
        f"{stem}.{ext}" for stem in ("metrics", "seeds", "splits") for ext in ("csv", "md", "tex"))
    assert len(pd.read_csv(tmp_path / "tables" / "metrics.csv")) == 4
    md = (tmp_path / "tables" / "metrics.md").read_text().splitlines()
    assert md[0].startswith("| model | classes | mode | seed | subset | n | accuracy |")
    assert len(md) == 2 + 4
    assert "| 0.800 [0.750, 0.840] |" in md[3]  # val row of seed 42
    seeds_md = (tmp_path / "tables" / "seeds.md").read_text()
    assert "0.850 ± 0.071" in seeds_md
    tex = (tmp_path / "tables" / "seeds.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "\\toprule" in tex and "\\bottomrule" in tex
    assert "n\\_seeds" in tex and "0.850 $\\pm$ 0.071" in tex


def test_notebook_reference_file():
    reference = summary.load_notebook_reference()
    assert reference["source"]["repository"] == "mmmmmmwei/galaxy-spiralarm-classifier"
    assert reference["source"]["commit"] == "08747bf"
    assert "B3" in reference["source"]["note"]
    assert sum(map(sum, reference["confusion_matrix"])) == reference["n"] == 339


def test_paper_comparison_puts_our_b0_6class_val_beside_the_notebook(three_runs):
    table = summary.paper_comparison(summary.collect(three_runs)).set_index("metric")
    assert list(table.columns) == ["notebook", "b0_6class_standard_s42",
                                   "b0_6class_standard_s43", "b0_6class_standard mean",
                                   "b0_6class_standard std"]
    assert table.loc["accuracy", "notebook"] == 0.8584
    assert table.loc["macro_f1", "notebook"] == 0.7951
    assert table.loc["f1_4", "notebook"] == 0.3636
    assert table.loc["support_5+", "notebook"] == 10
    assert table.loc["accuracy", "b0_6class_standard_s43"] == 0.90
    assert table.loc["accuracy", "b0_6class_standard mean"] == pytest.approx(0.85)


def test_write_comparison(tmp_path, three_runs):
    csv, md = summary.write_comparison(summary.collect(three_runs), tmp_path)
    assert pd.read_csv(csv).set_index("metric").loc["f1_?", "notebook"] == 0.9149
    text = md.read_text()
    assert "08747bf" in text and "leak B3" in text
    assert "| accuracy | 0.8584 | 0.8000 | 0.9000 |" in text
    assert text.count("| true \\ pred |") == 3  # the notebook's matrix and both of ours


def test_bad_experiment_name_in_file_is_reported_with_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"experiment": "run1", "subsets": {"val": subset_metrics(.8, .7)}}))
    with pytest.raises(ValueError, match=r"metrics\.json: experiment 'run1' is not of the form"):
        summary.collect([path])


def test_comparison_without_b0_6class_runs_shows_the_notebook_only(tmp_path, caplog):
    path = write_nested(tmp_path, "v2m_6class_standard_s42", subset_metrics(0.9, 0.8))
    table = summary.paper_comparison(summary.collect([path]))
    assert list(table.columns) == ["metric", "notebook"]
    assert "no b0 / 6class / val results" in caplog.text


def test_comparison_says_which_weights_ran_and_marks_the_columns_unlike_the_paper(tmp_path):
    scratch = "B0 trained its whole backbone from scratch on real data."
    paths = [
        write_nested(tmp_path, "b0_6class_standard_s1", subset_metrics(0.8, 0.7),
                     training=training_record(None, "no", notes=[scratch])),
        write_nested(tmp_path, "b0_6class_xai_s1", subset_metrics(0.8, 0.7),
                     training=training_record("hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0",
                                              "zoobot-v2")),
    ]
    table = summary.collect(paths)
    assert list(table["weights"]) == ["none (from scratch)",
                                      "hf_hub:mwalmsley/zoobot-encoder-efficientnet_b0"]
    assert list(table["weights_sha256"].fillna("-")) == ["-", "ab" * 32]
    _, md = summary.write_comparison(table, tmp_path)
    text = md.read_text()
    assert "| metric | notebook | b0_6class_standard_s1 † | b0_6class_xai_s1 † |" in text
    assert "| paper_weights | yes | no | zoobot-v2 |" in text
    assert f"**b0_6class_standard_s1:** {scratch}" in text


# --- ordinal view, per-class F1 intervals, the overview figure and aggregate ----------------------

def test_ordinal_and_per_class_interval_columns(tmp_path):
    paths = [write_nested(tmp_path, "b0_6class_standard_s1", with_ordinal(subset_metrics(.8, .7))),
             write_nested(tmp_path, "b0_6class_standard_s2",
                          with_ordinal(subset_metrics(.8, .7), qwk=0.6)),
             write_nested(tmp_path, "v2m_6class_standard_s1", subset_metrics(.8, .7))]  # older
    table = summary.collect(paths)
    row = table.iloc[0]
    assert (row["ordinal_n"], row["within_one"], row["mae_arms"], row["qwk"]) == (50, .9, .3, .8)
    assert (row["qwk_ci_low"], row["qwk_ci_high"]) == pytest.approx((0.7, 0.85))
    assert (row["ci_low_f1_2"], row["ci_high_f1_2"]) == pytest.approx((0.54, 0.75))
    assert pd.isna(table.iloc[2]["qwk"]) and pd.isna(table.iloc[2]["ci_low_f1_1"])
    # interval columns sit with the per-class block, not among the seed-summarised F1 columns
    columns = list(table.columns)
    assert columns.index("ci_low_f1_1") > columns.index("f1_?")
    seeds = summary.seed_summary(table).set_index("model")
    assert seeds.loc["b0", "qwk_mean"] == pytest.approx(0.7)
    assert not any(c.startswith("ci_") for c in seeds.columns)
    summary.write_tables(table, tmp_path / "out")
    md = (tmp_path / "out" / "metrics.md").read_text().splitlines()
    assert "| ECE | within 1 arm | MAE (arms) | QWK | F1 1 |" in md[0]
    assert "| 0.900 [0.850, 1.000] | 0.300 [0.200, 0.400] | 0.800 [0.700, 0.850] |" in md[2]
    assert "| – | – | – |" in md[4]  # metrics without the ordinal view
    assert "0.700 ± 0.141" in (tmp_path / "out" / "seeds.md").read_text()
    assert "within 1 arm" in (tmp_path / "out" / "metrics.tex").read_text()


def test_overview_figure_plots_the_metrics_beside_the_notebook(tmp_path):
    merged = ["1", "2", "3", "4+", "?"]
    paths = [write_nested(tmp_path, "b0_6class_standard_s1",
                          with_ordinal(subset_metrics(.8, .7, f1_first=0.42)),
                          test=with_ordinal(subset_metrics(.7, .6, f1_first=0.31))),
             write_nested(tmp_path, "v2m_merge45_standard_s1",
                          with_ordinal(subset_metrics(.8, .7, class_names=merged)))]
    table = summary.collect(paths)
    fig, data = overview_figure(table)
    notebook = data[data["experiment"] == "notebook"].set_index("class")
    assert notebook.loc["4", "f1"] == 0.3636 and notebook.loc["?", "f1"] == 0.9149
    ours = data[data["experiment"] != "notebook"].set_index(["experiment", "subset", "class"])
    assert len(ours) == 6 + 6 + 5
    # every plotted value is the metrics table's
    for (experiment, subset, name), point in ours.iterrows():
        row = table[(table["experiment"] == experiment) & (table["subset"] == subset)].iloc[0]
        assert point["f1"] == row[f"f1_{name}"]
        assert (point["ci_low"], point["ci_high"]) == (row[f"ci_low_f1_{name}"],
                                                       row[f"ci_high_f1_{name}"])
    assert ours.loc[("b0_6class_standard_s1", "test", "1"), "f1"] == 0.31
    # and is what the figure draws: a marker at x = F1 per point, a line over its interval
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["1 arm", "2 arms", "3 arms", "4 arms", "4+ arms", "5+ arms", "can't tell"]
    drawn, whiskers = {}, {}
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_label().count("|") == 2:
                drawn[tuple(line.get_label().split("|"))] = line.get_xdata()[0]
                assert ax.get_title() == display_name(line.get_label().split("|")[2])
        for lines in ax.collections:
            if lines.get_label().endswith("|ci"):
                (start, end), = [(s[0][0], s[1][0]) for s in lines.get_segments()]
                whiskers[tuple(lines.get_label().split("|")[:3])] = (start, end)
    assert len(drawn) == len(data)
    for point in data.itertuples(index=False):
        key = (point.row, point.subset, point[3])
        assert drawn[key] == pytest.approx(point.f1)
        if point.experiment == "notebook":
            assert key not in whiskers  # one published run: no interval
        else:
            assert whiskers[key] == pytest.approx((point.ci_low, point.ci_high))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [NOTEBOOK_ROW, "b0_6class_standard_s1", "v2m_merge45_standard_s1"]


def test_aggregate_writes_tables_comparisons_and_overview(tmp_path):
    a, b = known_pair()
    experiments = ["b0_6class_standard_s1", "b0_6class_xai_s1"]
    paths = [write_nested(tmp_path / "experiments", e, with_ordinal(subset_metrics(.8, .7)))
             for e in experiments]
    dirs = {e: write_predictions(tmp_path / "preds", e, frame)
            for e, frame in zip(experiments, (a, b))}
    written = aggregate.aggregate(paths, tmp_path / "summary",
                                comparisons=[{"a": experiments[0], "b": experiments[1]}],
                                predictions_dirs=dirs, n_boot=50)
    names = sorted(p.name for p in written)
    assert names == sorted(["metrics.csv", "metrics.md", "metrics.tex", "seeds.csv", "seeds.md",
                            "seeds.tex", "splits.csv", "splits.md", "splits.tex", "comparison.csv", "comparison.md", "comparisons.csv",
                            "comparisons.md", "targets.csv", "targets.md", "overview_f1.png"])
    assert all(p.stat().st_size for p in written)
    paired = pd.read_csv(tmp_path / "summary" / "comparisons.csv").set_index("metric")
    assert paired.loc["accuracy", "p_value"] == pytest.approx(14 / 64)


def test_run_aggregate_names_experiments_by_folder_and_refuses_undeclared_files(tmp_path):
    """The aggregate rule's function: predictions folders are <experiment>/predictions, and a
    file written but not declared by the rule is an error."""
    a, b = known_pair()
    experiments = ["b0_6class_standard_s1", "b0_6class_xai_s1"]
    paths = [write_nested(tmp_path / "experiments", e, with_ordinal(subset_metrics(.8, .7)))
             for e in experiments]
    folders = [write_predictions(tmp_path / "preds", e, frame)
               for e, frame in zip(experiments, (a, b))]
    out = tmp_path / "summary"
    declared = [out / name for name in (
        "metrics.csv", "metrics.md", "metrics.tex", "seeds.csv", "seeds.md", "seeds.tex",
        "splits.csv", "splits.md", "splits.tex", "comparison.csv", "comparison.md",
        "comparisons.csv", "comparisons.md", "targets.csv", "targets.md", "overview_f1.png")]
    comparisons = [{"a": experiments[0], "b": experiments[1]}]
    written = aggregate.run_aggregate(paths, folders, out / "metrics.csv", declared,
                                    comparisons=comparisons, n_boot=50)
    assert sorted(map(str, written)) == sorted(map(str, declared))
    paired = pd.read_csv(out / "comparisons.csv").set_index("metric")
    assert paired.loc["accuracy", "p_value"] == pytest.approx(14 / 64)
    with pytest.raises(RuntimeError, match="overview_f1.png"):
        aggregate.run_aggregate(paths, folders, out / "metrics.csv", declared[:-1],
                              comparisons=comparisons, n_boot=50)


def test_notebook_ordinal_view_from_its_published_confusion_matrix(three_runs):
    table = summary.paper_comparison(summary.collect(three_runs))
    notebook = table.set_index("metric")["notebook"]
    # rows and columns 1..5+ of the published matrix hold 237 galaxies (90 true "can't tell" and
    # 12 predicted "can't tell" left out). Two arms off: 1 -> 3 (1 galaxy) and 5+ -> 3 (1);
    # one arm off: 3 + 2 + 7 + 12 + 6 = 30
    assert notebook["within_one"] == pytest.approx(235 / 237)
    assert notebook["mae_arms"] == pytest.approx((30 + 2 * 2) / 237)
    assert 0.85 < notebook["qwk_ci_low"] < notebook["qwk"] < notebook["qwk_ci_high"] < 0.96


def test_spread_over_splits_is_kept_apart_from_spread_over_training_seeds(tmp_path):
    runs = [("b0_6class_xai_s1", 0.80), ("b0_6class_xai_s2", 0.84),
            ("b0_6class_xai_s1_split7", 0.70), ("b0_6class_xai_s1_split9", 0.60)]
    table = summary.collect([write_nested(tmp_path, name, subset_metrics(acc, 0.7))
                             for name, acc in runs])
    seeds = summary.seed_summary(table).set_index("split")
    assert seeds.loc["base", "n_seeds"] == 2
    assert seeds.loc["base", "accuracy_mean"] == pytest.approx(0.82)
    assert seeds.loc["base", "accuracy_std"] == pytest.approx(0.0282843, abs=1e-6)
    splits = summary.seed_summary(table, over="split").set_index("seed")
    assert splits.loc[1, "n_splits"] == 3 and splits.loc[1, "splits"] == "base,split7,split9"
    assert splits.loc[1, "accuracy_mean"] == pytest.approx(0.7)
    assert splits.loc[1, "accuracy_std"] == pytest.approx(0.1)
    assert splits.loc[2, "n_splits"] == 1


def test_a_value_that_rounds_to_zero_reads_zero_not_minus_zero():
    # a chance-level model's QWK interval: [-0.0001, 0.0002]
    assert tables.with_interval(-0.00001, -0.0001, 0.0002) == "0.000 [0.000, 0.000]"
    assert tables.with_interval(-0.25, -0.5, 0.0) == "-0.250 [-0.500, 0.000]"
    assert tables.difference_with_interval(-0.0001, -0.0002, 0.3) == "+0.000 [+0.000, +0.300]"
    assert tables.mean_std(-0.0004, 0.0001) == "0.000 ± 0.000"


def test_every_table_marks_a_missing_value_alike(tmp_path):
    """One mark for a value that does not exist, in the summary, the comparisons, the attribution
    table and the console summary."""
    from spiralarms.cli import format_summary
    from spiralarms.report import attribution, comparisons

    assert tables.MISSING == "–"
    for cell in (tables.number(None), tables.count(float("nan")), tables.p_value(None),
                 tables.with_interval(float("nan"), 0.1, 0.2), tables.mean_std(None, None),
                 tables.difference_with_interval(None, 0.1, 0.2)):
        assert cell == tables.MISSING
    table = summary.collect([write_nested(tmp_path, "b0_6class_standard_s1",
                                          subset_metrics(.8, .7) | {"ece": None})])
    shown = summary._metrics_display(table)
    assert shown.loc[0, "ECE"] == tables.MISSING and shown.loc[0, "QWK"] == tables.MISSING
    assert f"| {tables.MISSING} |" in comparisons.comparisons_markdown(pd.DataFrame(
        [{**dict.fromkeys(comparisons.COLUMNS), "comparison": "a vs b", "metric": "accuracy",
          "n": 0, "note": "missing"}], columns=comparisons.COLUMNS))
    measured = pd.DataFrame([{"experiment": "b0_6class_xai_s1", "status": "measured",
                              "method": "gradcam", "class": "2", "n": 3, "n_zero_maps": 3,
                              **{c: float("nan") for c in ("arm_share", "arm_area", "galaxy_share",
                                                           "galaxy_area", "sky_share", "sky_area",
                                                           "arm_lift", "galaxy_lift")}}])
    assert f"{tables.MISSING} ({tables.MISSING})" in attribution.to_markdown(measured)
    console = format_summary(table.assign(n=pd.NA, accuracy_ci_low=float("nan")))
    assert tables.MISSING in console.splitlines()[1]
