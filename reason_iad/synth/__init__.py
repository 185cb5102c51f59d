"""SynthIAD: a procedural industrial-inspection image generator that writes MMAD-format datasets.

Eight categories (four textures, four objects) with MVTec-style defect types and exact masks;
`generate_dataset` writes a dataset, `render_sample` renders one image, `write_gallery` the examples.
"""

from reason_iad.synth.catalog import CATEGORIES, DATASET
from reason_iad.synth.gallery import write_gallery
from reason_iad.synth.render import RenderedSample, render_sample, sample_rng
from reason_iad.synth.writer import SynthSummary, generate_dataset

__all__ = [
    "CATEGORIES",
    "DATASET",
    "RenderedSample",
    "SynthSummary",
    "generate_dataset",
    "render_sample",
    "sample_rng",
    "write_gallery",
]
