"""Reason-IAD: knowledge-guided latent reasoning for explainable industrial anomaly detection.

The library never imports gradio; the studio in `demo/` calls it through a narrow facade.
"""

__version__ = "0.1.0"
