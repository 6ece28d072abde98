"""The paper's ImageNet evaluations of a checkpoint: SGD linear probe on frozen features
(:mod:`.linear_probe`) and semi-supervised fine-tuning on the 1% / 10% label subsets
(:mod:`.semisup`, :mod:`.subsets`), sharing one training loop (:mod:`.trainer`). kNN lives in
:mod:`seed_transfer.imagenet.knn`."""
