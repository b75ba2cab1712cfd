"""Policy-side ML for SpecLoop: pure torch/transformers, no Django (the boundary is a function call).

    training.ml.safety      one safety classifier: four heads in one forward pass, the runtime guard's model
    training.ml.evaluation  policy generation and evaluation of replies on prompt sets

Importing this package (or its subpackages) is cheap: torch loads on first use.
"""
