"""Linear transfer on frozen features (Ericsson et al., CVPR 2021): logistic regression with a C sweep."""

from .logistic import SweepResult, default_c_grid, linear_transfer, plain_sklearn_sweep

__all__ = ["SweepResult", "default_c_grid", "linear_transfer", "plain_sklearn_sweep"]
