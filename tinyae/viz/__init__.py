"""Pictures: figures (``plot``), paths and grids in the latent space (``latent``), and the
interactive latent-space explorer page (``explore``)."""
