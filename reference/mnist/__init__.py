"""The MNIST track (seeds 000, 001, 004): data, the seeds' models, training on preloaded tensors, experiments.

- ``reference.mnist.data``: find or unpack the raw IDX files; ``load_mnist`` (torchvision) and ``load_mnist_tensors``;
- ``reference.mnist.models``: the 784-128-10 MLP and the small CNN;
- ``reference.mnist.training``: the seeds' loop on preloaded tensors;
- ``reference.mnist.experiments`` and ``reference.mnist.plots``: the experiments and their figures.
"""
