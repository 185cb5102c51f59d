"""Benchmarks (`reason-iad bench ...`): speed and memory targets measured as ratios within one run."""
