"""Simulated Galaxy Zoo 2 volunteers: vote columns of the catalogue, one volunteer at a time.

Volunteers answer what the image shows: the renderer measures on the rendered r band how far
the arms stand out of the noise (`arm_snr`), whether the PSF resolves neighbouring arms
(`psf_arm_spacings`) and the inclination, and `arm_visibility` turns them into the chance that
a volunteer can count the arms. So "can't tell" arises where arms are not visible (small, faint
or inclined spirals, flocculent discs), and blended arms are undercounted, as in GZ2 (Willett
et al. 2013; Hart et al. 2016). Votes follow the GZ2 decision tree, so counts, weights and
fractions are consistent. A few galaxies get volunteers' idiosyncrasies on top
(`VOTE_SCENARIOS`: too few votes, a misread or ambiguous count, ...), so the selection rejects
some galaxies for every reason, as on the real catalogue.

`_flag` rule (documented choice): 1 when the answer's debiased fraction is >= 0.8 (the
Willett et al. 2013 "clean" threshold), else 0.
"""

import numpy as np
from scipy.special import expit

from spiralarms import gz2
from spiralarms.synthetic.render import check_kind

FLAG_THRESHOLD = 0.8

# How a galaxy's volunteers behave, per arm-class galaxy (probabilities; the rest are "clean").
# Each non-clean scenario makes the galaxy fail one cut or the flag, or gives it a wrong label.
VOTE_SCENARIOS = {
    "looks_smooth": 0.015,   # features fraction below the 0.43 cut
    "looks_edgeon": 0.015,   # not-edge-on fraction below 0.715
    "no_spiral": 0.015,      # spiral fraction below 0.619
    "few_votes": 0.012,      # too few classifications for the vote cut
    "ambiguous": 0.025,      # no clean majority on the arm number: flag 0
    "misread": 0.025,        # a clean majority for a neighbouring arm number: wrong label
}


def _ordered_levels(n, centre, width):
    """Probabilities over n ordered answers, peaked at `centre` (a fractional answer index)."""
    p = np.exp(-0.5 * ((np.arange(n) - centre) / width) ** 2)
    return p / p.sum()


# What volunteers can see (docs/synthetic-sky.md): arms stand out of the noise at a ridge S/N of
# about 2 per native pixel, the PSF resolves neighbouring arms while its FWHM is below about 0.4
# arm spacings, and arms are hard to follow beyond ~65 deg inclination.
ARM_SNR_SEEN = 2.0
SPACINGS_RESOLVED = 0.4
INCLINATION_SEEN_DEG = 65.0


def arm_visibility(params):
    """Probability (0-1) that a volunteer sees the arms well enough to count them, from what
    the renderer measured on the image: arm S/N, PSF FWHM in arm spacings, inclination."""
    snr = max(params.get("arm_snr", 0.0), 1e-3)
    seen = expit((np.log(snr) - np.log(ARM_SNR_SEEN)) / 0.3)
    resolved = expit((SPACINGS_RESOLVED - params.get("psf_arm_spacings", 0.0)) / 0.07)
    face_on = expit((INCLINATION_SEEN_DEG - params.get("inclination_deg", 0.0)) / 5.0)
    return float(seen * resolved * face_on)


def _arm_votes(kind, params, scenario, rng):
    """t11 answer probabilities: the truth where the arms are visible, "can't tell" where
    they are not, an undercount where the PSF blends neighbouring arms."""
    if kind == 5 or not isinstance(kind, int):  # flocculent or weak arms: nothing to count
        cant = rng.uniform(0.86, 0.985)
        p = np.array([0.04, 0.3, 0.2, 0.16, 0.3, 0.0]) * rng.uniform(0.5, 1.5, 6)
        p *= (1 - cant) / p.sum()
        p[5] = cant
        return p
    vis = arm_visibility(params)
    blend = expit((params.get("psf_arm_spacings", 0.0) - 0.35) / 0.05)
    neighbour = kind - 1 if kind > 0 else 1
    if scenario == "misread":
        neighbour = kind + 1 if kind < 4 and rng.random() < 0.5 else neighbour
    p = np.zeros(6)
    p[5] = 0.005 + 0.99 * (1 - vis) ** 1.5
    counted = 1 - p[5]
    miss = 0.02 + 0.45 * blend
    if scenario == "misread":
        miss = rng.uniform(0.88, 0.97)
    elif scenario == "ambiguous":
        miss = rng.uniform(0.3, 0.55)
    to_neighbour = 0.97 if scenario == "misread" else 0.75
    p[kind] += counted * (1 - miss)
    p[neighbour] += counted * miss * to_neighbour
    spread = rng.uniform(0.5, 1.5, 5)
    p[:5] += counted * miss * (1 - to_neighbour) * spread / spread.sum()
    return p / p.sum()


def _latent_answers(kind, params, scenario, rng):
    """Per task, the answer probabilities a careful volunteer would have for this galaxy,
    from what the image shows (the renderer's measured arm visibility, inclination, bar,
    bulge, rings, dust) and the vote scenario."""
    u = rng.uniform
    incl = params.get("inclination_deg", 0.0)
    odd_feature = np.full(7, 0.05)  # ring, lens, disturbed, irregular, other, merger, dust lane
    odd = u(0.02, 0.15)
    if kind == "elliptical":
        smooth = u(0.8, 0.97)
        t01 = [smooth, (1 - smooth) * 0.85, (1 - smooth) * 0.15]
        edgeon, spiral = 0.1, u(0.02, 0.2)
    elif kind in ("irregular", "merger"):
        features = u(0.6, 0.9)
        t01 = [0.99 - features, features, 0.01]
        edgeon, spiral = u(0.02, 0.15), u(0.05, 0.45)
        odd = u(0.75, 0.97)
        odd_feature[3 if kind == "irregular" else 5] = 1.0
        odd_feature[2] = 0.3
    else:
        vis = 1.0 if kind == 5 else arm_visibility(params)
        edge_like = expit((incl - 76.0) / 3.0)  # projected thin discs look edge-on from ~76 deg
        clear = scenario == "few_votes"  # an obvious spiral that few volunteers saw
        features = (u(0.2, 0.4) if scenario == "looks_smooth"
                    else min(0.97, u(0.72, 0.97) * (0.55 + 0.45 * max(vis, edge_like))))
        if clear:
            features = u(0.95, 0.97)
        t01 = [0.99 - features, features, 0.01]
        edgeon = (u(0.4, 0.65) if scenario == "looks_edgeon"
                  else float(np.clip(edge_like + u(0.0, 0.01 if clear else 0.05), 0, 0.99)))
        spiral = (u(0.3, 0.55) if scenario == "no_spiral"
                  else u(0.98 if clear else 0.88, 0.99) * (0.6 + 0.4 * vis))
        if kind == "edgeon":
            edgeon, spiral = u(0.85, 0.98), u(0.1, 0.4)
        if params.get("ring", 0) > 0.25:
            odd, odd_feature[0] = max(odd, u(0.4, 0.8)), 1.0
        if params.get("dust", 0) > 0.8 and incl > 60:
            odd, odd_feature[6] = max(odd, u(0.4, 0.8)), 1.0
    bt = params.get("bt", 0.3)
    bar = params.get("bar", 0.0) * (arm_visibility(params) if isinstance(kind, int) else 0.5)
    return {
        "t01_smooth_or_features": t01,
        "t02_edgeon": [edgeon, 1 - edgeon],
        "t03_bar": [0.05 + 0.85 * bar, 0.95 - 0.85 * bar],
        "t04_spiral": [spiral, 1 - spiral],
        "t05_bulge_prominence": _ordered_levels(4, 0.5 + 8 * min(bt, 0.4), 0.7),
        "t06_odd": [odd, 1 - odd],
        "t07_rounded": _ordered_levels(3, 2 * (1 - params.get("bulge_q", 0.9)) / 0.4, 0.6),
        "t08_odd_feature": odd_feature / odd_feature.sum(),
        "t09_bulge_shape": _ordered_levels(3, 0.0 if bt > 0.1 else 2.0, 0.8),
        "t10_arms_winding": _ordered_levels(3, (params.get("pitch_deg", 20) - 12) / 10, 0.6),
        "t11_arms_number": _arm_votes(kind, params, scenario, rng),
    }


# Who sees a task: (earlier task, answers that lead there); None = every volunteer.
TASK_ROUTE = {
    "t01_smooth_or_features": None,
    "t02_edgeon": [("t01_smooth_or_features", (1,))],
    "t03_bar": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,))],
    "t04_spiral": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,))],
    "t05_bulge_prominence": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,))],
    "t06_odd": [("t01_smooth_or_features", (0, 1))],
    "t07_rounded": [("t01_smooth_or_features", (0,))],
    "t08_odd_feature": [("t06_odd", (0,))],
    "t09_bulge_shape": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (0,))],
    "t10_arms_winding": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,)),
                         ("t04_spiral", (0,))],
    "t11_arms_number": [("t01_smooth_or_features", (1,)), ("t02_edgeon", (1,)),
                        ("t04_spiral", (0,))],
}


def _simulate_votes(latent, n_volunteers, rng, careless_rate=0.15, care=(0.93, 1.0)):
    """Every volunteer answers every task they reach; careless ones answer more at random.

    Returns per task (counts, weights): GZ2 down-weights volunteers who disagree with the
    majority, which here are the careless ones.
    """
    careful = rng.random(n_volunteers) >= careless_rate
    consistency = np.where(careful, rng.uniform(*care, n_volunteers),
                           rng.uniform(0.2, 0.8, n_volunteers))
    weight = np.minimum(1.0, (consistency / 0.6) ** 4)
    answers, tallies = {}, {}
    for task, route in TASK_ROUTE.items():
        p = np.asarray(latent[task], dtype=float)
        probs = consistency[:, None] * p + (1 - consistency[:, None]) / len(p)
        cumulative = probs.cumsum(axis=1)
        choice = (rng.random(n_volunteers)[:, None] > cumulative).sum(axis=1)
        answers[task] = np.minimum(choice, len(p) - 1)
        reached = np.ones(n_volunteers, bool)
        for earlier, allowed in route or []:
            leads_here = np.zeros(len(gz2.TASKS[earlier]), bool)
            leads_here[list(allowed)] = True
            reached &= leads_here[answers[earlier]]
        chosen = answers[task][reached]
        tallies[task] = (np.bincount(chosen, minlength=len(p)),
                         np.bincount(chosen, weights=weight[reached], minlength=len(p)))
    return tallies


def _task_columns(task, counts, weights, rng):
    """The six catalogue columns of each answer of one task."""
    n, w = counts.sum(), weights.sum()
    fraction = counts / n if n else np.zeros(len(counts))
    weighted = weights / w if w else np.zeros(len(counts))
    # Debiasing (Hart+16) shifts fractions a little; renormalised so a task still sums to 1.
    debiased = weighted * np.exp(rng.normal(0, 0.03, len(counts)))
    debiased = debiased / debiased.sum() if debiased.sum() else debiased
    debiased = np.round(debiased, 3)
    columns = zip(counts.tolist(), np.round(weights, 3).tolist(), np.round(fraction, 3).tolist(),
                  np.round(weighted, 3).tolist(), debiased.tolist(),
                  (debiased >= FLAG_THRESHOLD).astype(int).tolist())
    row = {}
    for answer, values in zip(gz2.TASKS[task], columns):
        for suffix, value in zip(gz2.ANSWER_SUFFIXES, values):
            row[f"{task}_{answer}_{suffix}"] = value
    return row


def _draw_scenario(kind, rng):
    if not isinstance(kind, int):
        return "non_target"
    pick = rng.random()
    for scenario, p in VOTE_SCENARIOS.items():
        if pick < p:
            return scenario
        pick -= p
    return "clean"


def assign_scenarios(kinds, rng, exact_from=50):
    """Vote scenarios for a whole catalogue.

    From `exact_from` arm-class galaxies on, each scenario gets round(rate * n) galaxies and at
    least one, so the selection rejects some galaxies for every reason even in a small demo.
    """
    arm_galaxies = [i for i, kind in enumerate(kinds) if isinstance(kind, int)]
    scenarios = ["non_target"] * len(kinds)
    if len(arm_galaxies) < exact_from:
        for i in arm_galaxies:
            scenarios[i] = _draw_scenario(kinds[i], rng)
        return scenarios
    shuffled = iter(rng.permutation(arm_galaxies))
    for scenario, rate in VOTE_SCENARIOS.items():
        for _ in range(max(1, round(rate * len(arm_galaxies)))):
            scenarios[next(shuffled)] = scenario
    for i in shuffled:
        scenarios[i] = "clean"
    return scenarios


def catalogue_votes(kind, params, rng, scenario=None):
    """Vote columns, `total_classifications` and `total_votes` of one galaxy, and its scenario
    (drawn from VOTE_SCENARIOS unless given)."""
    kind = check_kind(kind)
    if scenario is None:
        scenario = _draw_scenario(kind, rng)
    elif scenario not in VOTE_SCENARIOS and scenario not in ("clean", "non_target"):
        raise ValueError(f"unknown vote scenario {scenario!r}; use 'clean' or one of "
                         f"{list(VOTE_SCENARIOS)}")
    few = scenario == "few_votes"
    # two volunteers cast ~16 votes: below the cut of 20 whatever they answer
    n_volunteers = 2 if few else int(np.clip(round(rng.normal(46, 8)), 28, 80))
    # the two volunteers of a sparsely classified galaxy are careful, so only the vote cut
    # removes it
    tallies = _simulate_votes(_latent_answers(kind, params, scenario, rng), n_volunteers, rng,
                              careless_rate=0.0 if few else 0.15,
                              care=(1.0, 1.0) if few else (0.93, 1.0))
    row = {"total_classifications": n_volunteers,
           "total_votes": int(sum(c.sum() for c, _ in tallies.values()))}
    for task, (counts, weights) in tallies.items():
        row.update(_task_columns(task, counts, weights, rng))
    row["gz2class"] = gz2_class(row)
    return row, scenario


def _winner(row, task):
    fractions = [row[f"{task}_{a}_weighted_fraction"] for a in gz2.TASKS[task]]
    return int(np.argmax(fractions))


def gz2_class(row):
    """GZ2 morphology string from the majority answers, e.g. 'Er', 'Ser', 'SBc2m', 'Sc?t(r)'."""
    t01 = _winner(row, "t01_smooth_or_features")
    if t01 == 2:
        return "A"
    if t01 == 0:
        name = "E" + "ric"[_winner(row, "t07_rounded")]
    elif _winner(row, "t02_edgeon") == 0:
        name = "Se" + "rbn"[_winner(row, "t09_bulge_shape")]
    else:
        name = "S" + ("B" if _winner(row, "t03_bar") == 0 else "")
        name += "dcba"[_winner(row, "t05_bulge_prominence")]
        if _winner(row, "t04_spiral") == 0:
            name += "1234+?"[_winner(row, "t11_arms_number")]
            name += "tml"[_winner(row, "t10_arms_winding")]
    if _winner(row, "t06_odd") == 0:
        name += "(" + "rldiomu"[_winner(row, "t08_odd_feature")] + ")"
    return name
