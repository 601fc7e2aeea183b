"""Segmentation accuracy and validation-subset selection live on the ground floor
(``paretonas_core.segmentation``), which the supernets use too; re-exported here as the
evaluators' accuracy metrics."""

from paretonas_core.segmentation import (  # noqa: F401
    IGNORE_INDEX,
    confusion_matrix,
    iou_per_class,
    kendall_tau,
    mean_iou,
    pixel_accuracy,
    random_subset,
    ranking_preserving_subset,
    stratified_subset,
    subset_kendall_tau,
    subset_miou,
)
