"""RandLA-Net super-network search space (SSS3D): elastic sampling and architecture parameters,
weight-inheriting extraction, S3DIS-style scene loading and a synthetic scene generator."""

from __future__ import annotations

from search_spaces.randlanet.space import RandLANetOptions, RandLANetSpace

__all__ = ["RandLANetOptions", "RandLANetSpace"]
