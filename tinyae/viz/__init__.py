"""Pictures: figures (``plot``), paths and grids in the latent space (``latent``), the
interactive latent-space explorer page (``explore``), and ROC curves with the most and least
anomalous images (``anomaly``)."""
