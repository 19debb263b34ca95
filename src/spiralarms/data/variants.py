"""Class variants: views of the six arm classes (1, 2, 3, 4, 5+, can't tell) used as targets.

Each variant maps the original class index to a target index, or drops the class (None). The maps
follow the notebook's `class_map` lists; class names follow the variant everywhere (bug B9 fixed).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    class_map: tuple  # original arm_class index -> target index, or None to drop
    class_names: tuple  # one name per target index

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def target(self, arm_class: int):
        return self.class_map[int(arm_class)]


VARIANTS = {
    v.name: v
    for v in [
        Variant("6class", (0, 1, 2, 3, 4, 5), ("1", "2", "3", "4", "5+", "?")),
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


def long_names(variant: Variant) -> list:
    """Axis-label names, e.g. '1 arm', '3-4 arms', "can't tell"."""
    out = []
    for n in variant.class_names:
        out.append("can't tell" if n == "?" else f"{n} arm" + ("" if n == "1" else "s"))
    return out
