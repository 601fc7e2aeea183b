"""The ground floor every other package may import and that imports none of them: the plugin
registry (``registry``) and segmentation accuracy with validation-subset selection
(``segmentation``). ``search_spaces``, ``evaluators``, ``surrogate`` and ``service`` build on it;
``tests/test_layers.py`` checks the rule."""
