"""The SynthIAD catalog: 8 categories, their defect types and the words used in questions about them.

Names (category and defect keys) are fixed: the knowledge seed `knowledge/synth-iad.jsonl` and trained models
depend on them. Each category lists the structure and colour/finish variants its renderer can draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DATASET = "SynthIAD"
NORMAL = "good"

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class Variant:
    """One way a category can look (a structure or a colour/finish), with its option text."""

    key: str
    text: str
    colour: Colour = (0.5, 0.5, 0.5)
    accent: Colour = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class DefectType:
    """A defect type: readable title, descriptions per rendered look, and a likely cause/consequence."""

    name: str
    title: str
    looks: tuple[tuple[str, str], ...]
    analysis: str

    def description(self, look: str | None = None) -> str:
        """The description of the given look (the first one when `look` is None or unknown)."""
        return dict(self.looks).get(look or "", self.looks[0][1])


@dataclass(frozen=True)
class Category:
    """A SynthIAD category: a texture or an object, its variants and its defect types."""

    name: str
    kind: Literal["texture", "object"]
    title: str
    structures: tuple[Variant, ...]
    details: tuple[Variant, ...]
    defects: tuple[DefectType, ...]

    @property
    def defect_names(self) -> tuple[str, ...]:
        """The defect keys in catalog order."""
        return tuple(d.name for d in self.defects)

    def defect(self, name: str) -> DefectType:
        """The defect type called `name` (KeyError if this category has none)."""
        for defect in self.defects:
            if defect.name == name:
                return defect
        raise KeyError(f"{self.name} has no defect type {name!r}")

    def structure(self, key: str) -> Variant:
        """The structure variant with this key."""
        return next(v for v in self.structures if v.key == key)

    def detail(self, key: str) -> Variant:
        """The colour/finish variant with this key."""
        return next(v for v in self.details if v.key == key)


def _defect(name: str, title: str, looks: dict[str, str], analysis: str) -> DefectType:
    return DefectType(name=name, title=title, looks=tuple(looks.items()), analysis=analysis)


_CARPET = Category(
    name="carpet",
    kind="texture",
    title="Carpet",
    structures=(
        Variant("plain", "A plain weave of single crossing threads"),
        Variant("basket", "A basket weave of paired crossing threads"),
    ),
    details=(
        Variant("beige", "Beige fabric", (0.78, 0.70, 0.55)),
        Variant("blue", "Slate blue fabric", (0.32, 0.42, 0.62)),
        Variant("green", "Olive green fabric", (0.45, 0.52, 0.30)),
        Variant("red", "Burgundy red fabric", (0.58, 0.22, 0.24)),
        Variant("gray", "Charcoal gray fabric", (0.40, 0.40, 0.42)),
    ),
    defects=(
        _defect(
            "hole",
            "Hole",
            {"dark": "A ragged opening in the fabric where the dark backing shows through"},
            "Wear or a snag pulled threads out; the fabric can unravel further around the opening",
        ),
        _defect(
            "cut",
            "Cut",
            {"dark": "A long narrow slit cutting straight through the woven threads"},
            "A blade or sharp edge sliced the fabric during handling; the slit will widen under tension",
        ),
        _defect(
            "color",
            "Color stain",
            {"tint": "A patch of fabric with a clearly different colour from its surroundings"},
            "Uneven dyeing or a spilled chemical changed the fibre colour; the piece is a cosmetic reject",
        ),
        _defect(
            "thread",
            "Loose thread",
            {
                "light": "A loose pale thread lying in a curve on top of the weave",
                "dark": "A loose dark thread lying in a curve on top of the weave",
            },
            "A yarn end was not trimmed during weaving; it can snag and pull more threads loose",
        ),
    ),
)

_WOOD = Category(
    name="wood",
    kind="texture",
    title="Wood",
    structures=(
        Variant("horizontal", "Wood grain lines running horizontally"),
        Variant("vertical", "Wood grain lines running vertically"),
    ),
    details=(
        Variant("blond", "Pale blond wood", (0.86, 0.73, 0.52)),
        Variant("honey", "Honey brown wood", (0.76, 0.53, 0.29)),
        Variant("walnut", "Dark walnut wood", (0.48, 0.32, 0.19)),
        Variant("cherry", "Reddish cherry wood", (0.70, 0.37, 0.24)),
    ),
    defects=(
        _defect(
            "scratch",
            "Scratch",
            {
                "light": "A thin pale line scraped across the grain",
                "dark": "A thin dark line scored across the grain",
            },
            "A hard object was dragged over the board; the finish is broken and may let moisture in",
        ),
        _defect(
            "hole",
            "Hole",
            {"dark": "One or more small round dark holes in the wood"},
            "Insect bore holes or knots that fell out; they weaken the board and spoil the surface",
        ),
        _defect(
            "liquid",
            "Liquid stain",
            {"dark": "A darker blotch with a soft irregular outline where liquid soaked in"},
            "Water or another liquid was spilled and absorbed; it can cause swelling and permanent staining",
        ),
        _defect(
            "color",
            "Discoloration",
            {"tint": "An area of the wood with an unnatural tint compared with the grain around it"},
            "Uneven staining or exposure to light and chemicals; the board fails colour matching",
        ),
    ),
)

_TILE = Category(
    name="tile",
    kind="texture",
    title="Tile",
    structures=(
        Variant("fine", "A fine-grained speckled stone pattern"),
        Variant("coarse", "A coarse-grained speckled stone pattern"),
    ),
    details=(
        Variant("gray", "Light gray stone", (0.74, 0.74, 0.72)),
        Variant("beige", "Warm beige stone", (0.82, 0.73, 0.60)),
        Variant("blue", "Blue-gray stone", (0.56, 0.62, 0.70)),
        Variant("terracotta", "Terracotta stone", (0.74, 0.46, 0.33)),
    ),
    defects=(
        _defect(
            "crack",
            "Crack",
            {"dark": "A thin dark jagged line running across the tile"},
            "Mechanical impact or thermal stress fractured the tile; it can break apart under load",
        ),
        _defect(
            "oil",
            "Oil stain",
            {"dark": "A dark glossy smear with a rounded irregular outline"},
            "Lubricant dripped from machinery onto the tile; the spot is slippery and resists cleaning",
        ),
        _defect(
            "gray_stroke",
            "Gray stroke",
            {"gray": "A broad gray streak painted over the speckled surface"},
            "A tool or rubber part rubbed off onto the tile; the mark must be cleaned or the tile rejected",
        ),
    ),
)

_GRID = Category(
    name="grid",
    kind="texture",
    title="Metal grid",
    structures=(
        Variant("square", "A square mesh of crossing wires"),
        Variant("diamond", "A diamond mesh of diagonal wires"),
    ),
    details=(
        Variant("silver", "Bright silver wire", (0.80, 0.80, 0.82), (0.10, 0.10, 0.11)),
        Variant("steel", "Dark steel wire", (0.52, 0.54, 0.56), (0.07, 0.07, 0.08)),
        Variant("copper", "Copper-coloured wire", (0.80, 0.52, 0.32), (0.09, 0.08, 0.08)),
    ),
    defects=(
        _defect(
            "bent",
            "Bent wires",
            {"warp": "Wires bowed out of their straight lines so the mesh openings are distorted"},
            "Pressure or impact deformed the mesh; the opening size no longer meets the specification",
        ),
        _defect(
            "broken",
            "Broken wires",
            {"gap": "Wire pieces missing from the mesh, leaving cut ends and an enlarged gap"},
            "Wires snapped from fatigue or cutting; the mesh loses strength and sharp ends can injure",
        ),
        _defect(
            "metal_contamination",
            "Metal contamination",
            {
                "bright": "A shiny foreign metal chip lying on the wires",
                "rust": "A rust-coloured metal fragment lying on the wires",
            },
            "Debris from machining landed on the mesh; it can fall into the product or cause corrosion",
        ),
    ),
)

_BOTTLE = Category(
    name="bottle",
    kind="object",
    title="Bottle",
    structures=(Variant("top", "A round opening with concentric rings, seen from above"),),
    details=(
        Variant("brown", "Brown glass", (0.52, 0.31, 0.13)),
        Variant("green", "Green glass", (0.22, 0.46, 0.27)),
        Variant("clear", "Clear glass", (0.70, 0.74, 0.76)),
    ),
    defects=(
        _defect(
            "broken_large",
            "Large breakage",
            {"gap": "A big piece of the rim broken away, showing the background and a bright fracture edge"},
            "The bottle hit a hard object in transport; it cannot be sealed and glass shards are a hazard",
        ),
        _defect(
            "broken_small",
            "Small breakage",
            {"gap": "A small chip missing from the outer rim"},
            "A light knock chipped the rim; the cap will not seal and splinters may fall into the content",
        ),
        _defect(
            "contamination",
            "Contamination",
            {
                "dark": "A dark foreign particle sitting on the glass",
                "light": "A pale deposit stuck on the glass",
            },
            "Foreign material entered during filling or cleaning; the bottle fails hygiene checks",
        ),
    ),
)

_METAL_NUT = Category(
    name="metal_nut",
    kind="object",
    title="Metal nut",
    structures=(Variant("hexagon", "A hexagon with a round hole in the middle"),),
    details=(
        Variant("silver", "Polished silver metal", (0.76, 0.77, 0.79)),
        Variant("brass", "Brass-coloured metal", (0.80, 0.65, 0.36)),
        Variant("black", "Blackened steel", (0.34, 0.34, 0.37)),
    ),
    defects=(
        _defect(
            "scratch",
            "Scratch",
            {
                "light": "A thin bright scratch across the metal face",
                "dark": "A thin dark groove across the metal face",
            },
            "The nut rubbed against a tool or another part; the coating is damaged and may corrode",
        ),
        _defect(
            "bent",
            "Bent corner",
            {"warp": "One corner of the hexagon bent out of shape and darkened by the changed angle"},
            "Excess force during pressing or handling deformed the nut; it may not fit its wrench or seat",
        ),
        _defect(
            "color",
            "Discoloration",
            {
                "blue": "A bluish heat-tint patch on the metal face",
                "rust": "A rusty brown patch on the metal face",
            },
            "Overheating or a chemical reaction tinted the metal; it points to a process fault",
        ),
    ),
)

_PILL = Category(
    name="pill",
    kind="object",
    title="Pill",
    structures=(Variant("capsule", "An oblong capsule with rounded ends"),),
    details=(
        Variant("white", "White coating with red speckles", (0.94, 0.93, 0.90), (0.78, 0.20, 0.20)),
        Variant("cream", "Cream coating with brown speckles", (0.93, 0.86, 0.70), (0.45, 0.28, 0.16)),
        Variant("yellow", "Pale yellow coating with dark speckles", (0.96, 0.90, 0.55), (0.22, 0.22, 0.28)),
    ),
    defects=(
        _defect(
            "crack",
            "Crack",
            {"dark": "A thin dark crack running across the pill"},
            "Too much compression force or drying stress split the tablet; it may crumble and lose dose accuracy",
        ),
        _defect(
            "contamination",
            "Contamination",
            {"dark": "A dark foreign speck stuck on the pill surface"},
            "A foreign particle got onto the tablet during pressing; the batch fails purity requirements",
        ),
        _defect(
            "color",
            "Discoloration",
            {"tint": "A region of the pill tinted a different colour than the rest of the coating"},
            "Uneven coating or an ingredient reaction changed its colour; the dose may be unreliable",
        ),
    ),
)

_SCREW = Category(
    name="screw",
    kind="object",
    title="Screw",
    structures=(
        Variant("right", "A threaded screw lying with its tip pointing right"),
        Variant("down", "A threaded screw lying with its tip pointing down"),
        Variant("left", "A threaded screw lying with its tip pointing left"),
        Variant("up", "A threaded screw lying with its tip pointing up"),
    ),
    details=(
        Variant("zinc", "Bright zinc-plated steel", (0.76, 0.77, 0.79)),
        Variant("black", "Black oxide steel", (0.30, 0.30, 0.32)),
        Variant("brass", "Brass", (0.78, 0.62, 0.33)),
    ),
    defects=(
        _defect(
            "scratch_head",
            "Scratched head",
            {
                "light": "A bright scratch across the screw head",
                "dark": "A dark scratch mark across the screw head",
            },
            "A driver bit slipped on the head; the finish is damaged and may corrode",
        ),
        _defect(
            "thread_side",
            "Damaged thread",
            {"gap": "Thread crests flattened or torn away along one side of the shaft"},
            "The thread was damaged in rolling or by impact; the screw will bind or strip when fastened",
        ),
        _defect(
            "manipulated_front",
            "Deformed tip",
            {"gap": "The tip of the screw is cut off or bent out of line"},
            "The tip was cut or bent by a faulty tool; the screw will not start cleanly in its hole",
        ),
    ),
)

CATEGORIES: dict[str, Category] = {
    c.name: c for c in (_CARPET, _WOOD, _TILE, _GRID, _BOTTLE, _METAL_NUT, _PILL, _SCREW)
}
"""All SynthIAD categories by name, textures first."""


def get_category(name: str) -> Category:
    """The category called `name` (KeyError naming the known ones otherwise)."""
    try:
        return CATEGORIES[name]
    except KeyError:
        raise KeyError(f"unknown category {name!r}; known: {', '.join(CATEGORIES)}") from None
