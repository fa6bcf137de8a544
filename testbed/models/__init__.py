"""Text encoders, diffusion models and utility evaluation used by the repair reference path."""
