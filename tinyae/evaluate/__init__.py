"""Measuring a trained model: reconstruction error, PCA and 5-NN baselines (``metrics``),
distorted inputs (``robustness``), a VAE's ELBO and likelihood (``vae_eval``),
anomaly scores and their ROC (``anomaly``), attribute directions in the code (``attributes``)."""
