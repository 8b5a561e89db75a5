"""The VAE as a PyTorch module, with tinyae's parts and names (imported only by ``to_torch``).

    h = encoder(x);  mu = mu_head(h);  logvar = logvar_head(h)
    z = mu + exp(logvar / 2) * eps   (training; z = mu in eval mode, as tinyae's reconstruct)
    forward(x) -> (logits, mu, logvar), the three terms of the negative ELBO
"""
import torch
from torch import nn


class VAE(nn.Module):
    """tinyae's ``VariationalAutoencoder`` in PyTorch: the same parts, names and maths."""

    def __init__(self, encoder, mu_head, logvar_head, decoder):
        super().__init__()
        self.encoder, self.mu_head, self.logvar_head, self.decoder = (
            encoder, mu_head, logvar_head, decoder)

    def encode(self, x):
        """(mu, logvar), each (N, Z)."""
        h = self.encoder(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z):
        """Pixel probabilities sigmoid(decoder(z)): (N, Z) -> (N, D)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(logvar / 2) * torch.randn_like(mu) if self.training else mu
        return self.decoder(z), mu, logvar
