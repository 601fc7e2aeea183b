"""DeepLabV3+ (MobileNetV2 backbone) supernet search space, after FMAS.

Modules: ``structure`` (dimensions, arch -> NetConfig), ``ops`` (elastic conv/BN),
``supernet`` (weight-sharing model, export, importance reordering), ``static`` (plain subnet),
``costs`` (analytic MACs/params/peak memory), ``checkpoint``, ``data`` (VOC reader), ``synth``
(synthetic VOC generator), ``evaluation`` (confusion matrices, BN re-calibration), ``training``
/ ``train`` (sandwich-rule supernet training and its CLI), ``space`` (the SearchSpace).
"""
