"""th1nker: trained computers that learn to compute exactly with a latent thinking loop."""

__version__ = "0.1.0"
