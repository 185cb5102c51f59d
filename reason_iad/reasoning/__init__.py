"""Reason-IAD's test-time latent reasoning: pure reward/update/patch functions and the engine loop."""
