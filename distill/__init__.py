"""SEED: self-supervised distillation (Fang et al., ICLR 2021).

Library side of ``tools/distill.py``: the SEED objective and its baselines, the
teacher/student builders, checkpoint loaders, data pipeline and the training loop.
"""

__version__ = "0.1.0"
