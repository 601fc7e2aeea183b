"""ParetoNAS package."""
