"""Stage `aggregate` (`report.aggregate`): the summary tables over experiments, seeds and splits, the
comparison with the notebook, paired comparisons and the overview figure; every table's cells are
formatted by `report.tables`."""
