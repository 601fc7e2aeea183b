"""GAP8 profilers: a calibrated analytic model of int8 inference and a GVSOC simulator hook."""
