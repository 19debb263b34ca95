"""Galaxy Zoo 2 vocabulary: column names of `zoo2MainSpecz.csv.gz`, the arm-number answers and
the cut-out frame.

The real release has 233 columns: 11 identifiers/summary columns, then six columns for each of the
37 answers (Willett et al. 2013, Hart et al. 2016).
"""

FRAME = 424  # GZ2 cut-outs are 424 x 424 px (0.02 Petrosian R90 per pixel)

# The 11 columns before the answers: identifiers, position, sample, GZ2 class and vote totals.
LEADING_COLUMNS = [
    "specobjid", "dr8objid", "dr7objid", "ra", "dec", "rastring", "decstring",
    "sample", "gz2class", "total_classifications", "total_votes",
]

TASKS = {
    "t01_smooth_or_features": ["a01_smooth", "a02_features_or_disk", "a03_star_or_artifact"],
    "t02_edgeon": ["a04_yes", "a05_no"],
    "t03_bar": ["a06_bar", "a07_no_bar"],
    "t04_spiral": ["a08_spiral", "a09_no_spiral"],
    "t05_bulge_prominence": ["a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant"],
    "t06_odd": ["a14_yes", "a15_no"],
    "t07_rounded": ["a16_completely_round", "a17_in_between", "a18_cigar_shaped"],
    "t08_odd_feature": ["a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular",
                        "a23_other", "a24_merger", "a38_dust_lane"],
    "t09_bulge_shape": ["a25_rounded", "a26_boxy", "a27_no_bulge"],
    "t10_arms_winding": ["a28_tight", "a29_medium", "a30_loose"],
    "t11_arms_number": ["a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell"],
}

ANSWER_SUFFIXES = ["count", "weight", "fraction", "weighted_fraction", "debiased", "flag"]

ANSWERS = [f"{task}_{answer}" for task, answers in TASKS.items() for answer in answers]

CATALOG_COLUMNS = LEADING_COLUMNS + [f"{a}_{s}" for a in ANSWERS for s in ANSWER_SUFFIXES]

# Arm-number answers in class-index order: 0 -> 1 arm, ..., 4 -> more than 4, 5 -> can't tell.
ARM_ANSWERS = [f"t11_arms_number_{a}" for a in TASKS["t11_arms_number"]]
ARM_CLASS_NAMES = ["1", "2", "3", "4", "5+", "?"]

# Answers whose weighted fractions the paper's selection cuts on.
FEATURES = "t01_smooth_or_features_a02_features_or_disk"
NOT_EDGEON = "t02_edgeon_a05_no"
SPIRAL = "t04_spiral_a08_spiral"

# Every column of gz2_filename_mapping.csv, in the file's order (the reader takes two of them:
# catalog.MAPPING_COLUMNS).
MAPPING_FILE_COLUMNS = ["objid", "sample", "asset_id"]

assert len(CATALOG_COLUMNS) == 233
