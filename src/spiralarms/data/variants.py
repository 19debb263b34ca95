"""Class variants: views of the six arm classes (1, 2, 3, 4, 5+, can't tell) used as targets.

Each variant maps the original class index to a target index, or drops the class (None). The maps
follow the notebook's `class_map` lists; class names follow the variant everywhere (bug B9 fixed).
"""

from dataclasses import dataclass

import numpy as np

from spiralarms.gz2 import ARM_CLASS_NAMES

DROPPED = -1  # the target of a class the variant drops


@dataclass(frozen=True)
class Variant:
    name: str
    class_map: tuple  # original arm_class index -> target index, or None to drop
    class_names: tuple  # one name per target index

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def lookup(self) -> tuple:
        """Target index per original class, DROPPED for the classes the variant drops: the class
        map as the input pipeline's lookup table and `targets` apply it."""
        return tuple(DROPPED if t is None else t for t in self.class_map)

    def targets(self, arm_class) -> np.ndarray:
        """Target index of each original arm class (array-like), DROPPED where the variant drops it."""
        return np.asarray(self.lookup, np.int64)[np.asarray(arm_class, np.int64)]

    @property
    def vote_matrix(self) -> np.ndarray:
        """(6, n_classes) 0/1 matrix: t11 answer i counts towards target t. Merged answers sum
        their votes; a dropped answer's row is zero, so its votes are discarded."""
        matrix = np.zeros((len(self.class_map), self.n_classes), np.float32)
        for answer, target in enumerate(self.class_map):
            if target is not None:
                matrix[answer, target] = 1.0
        return matrix

    def merge_votes(self, votes) -> np.ndarray:
        """The six t11 vote counts (..., 6) as the variant's targets (..., n_classes): merged
        classes sum their answers' votes, `select12` keeps the votes for 1 and 2 arms only."""
        votes = np.asarray(votes, np.float64)
        if votes.shape[-1] != len(self.class_map):
            raise ValueError(f"vote counts must have {len(self.class_map)} answers on the last "
                             f"axis (t11: 1, 2, 3, 4, 5+, ?), got shape {votes.shape}")
        return votes @ self.vote_matrix.astype(np.float64)

    def counts(self, arm_class) -> np.ndarray:
        """Galaxies per target class among the original arm classes `arm_class`."""
        targets = self.targets(arm_class)
        return np.bincount(targets[targets != DROPPED], minlength=self.n_classes)


VARIANTS = {
    v.name: v
    for v in [
        # GZ2's six arm-number answers as they are: the original classes every variant maps
        Variant("6class", (0, 1, 2, 3, 4, 5), tuple(ARM_CLASS_NAMES)),
        # notebook class_map [0,1,2,2,3,4]: 3 and 4 arms merged
        Variant("merge34", (0, 1, 2, 2, 3, 4), ("1", "2", "3-4", "5+", "?")),
        # notebook class_map [0,1,2,3,3,4]: 4 and more-than-4 merged
        Variant("merge45", (0, 1, 2, 3, 3, 4), ("1", "2", "3", "4+", "?")),
        # NUM_CLASS=2 with class_map [0,1,...]: 1 arm vs 2 arms (bug B7: class_sel_arr is dead config)
        Variant("select12", (0, 1, None, None, None, None), ("1", "2")),
    ]
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown class variant {name!r}; choose one of {sorted(VARIANTS)}"
        ) from None


def display_name(name: str) -> str:
    """A class as people read it: '1 arm', '3-4 arms', '5+ arms', "can't tell" (for '?'). The one
    wording of class names in figures and tables."""
    return "can't tell" if name == "?" else f"{name} arm" + ("" if name == "1" else "s")


def long_names(variant: Variant) -> list:
    """Axis-label names of a variant's classes, e.g. '1 arm', '3-4 arms', "can't tell"."""
    return [display_name(n) for n in variant.class_names]


def _arm_position(variant: Variant, target: int) -> float:
    """Mean original class index of what target `target` holds: a merged class sits between the
    classes it merges."""
    return float(np.mean([i for i, t in enumerate(variant.class_map) if t == target]))


# Every class name of every variant in arm order: 1, 2, 3, 3-4, 4, 4+, 5+, ? (can't tell last).
_POSITIONS = {name: _arm_position(v, t) for v in VARIANTS.values()
              for t, name in enumerate(v.class_names)}
CLASS_ORDER = tuple(sorted(_POSITIONS, key=_POSITIONS.get))
