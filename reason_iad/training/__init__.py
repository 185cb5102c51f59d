"""Training of the embedded default models (`reason-iad train-tiny`): the tiny inspector and the tiny CLIP.

Both are trained from scratch on the procedural SynthIAD images (`reason_iad.synth`) with seeds disjoint from
evaluation, and shipped in `reason_iad/assets/`.
"""
