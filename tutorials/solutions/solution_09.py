"""Solution to the exercise of tutorial 09: the KL sparsity penalty's backward.

rho_hat_j = (1/N) sum_n z_nj, so dP/dz_nj = (1/N) dP/drho_hat_j with
dP/drho_hat_j = beta (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)).
"""
import numpy as np


class MyKL:
    def __init__(self, rho, beta):
        self.rho, self.beta = rho, beta

    def forward(self, Z):
        self.Z, self.rho_hat = Z, Z.mean(axis=0)
        r, q = self.rho, self.rho_hat
        return self.beta * np.sum(r * np.log(r / q) + (1 - r) * np.log((1 - r) / (1 - q)))

    def backward(self):
        r, q = self.rho, self.rho_hat
        per_unit = self.beta * (-r / q + (1 - r) / (1 - q)) / len(self.Z)     # (H,)
        return np.broadcast_to(per_unit, self.Z.shape).copy()
