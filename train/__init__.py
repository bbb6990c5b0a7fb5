"""edgeship.train — datasets, the model zoo and the fit loop (needs ``edgeship[build]``)."""

from ._datasets import Dataset as Dataset
from ._datasets import list_datasets as list_datasets
from ._datasets import load_dataset as load_dataset
from ._datasets import register_dataset as register_dataset
from ._fit import accuracy as accuracy
from ._fit import compile_classifier as compile_classifier
from ._fit import fit as fit
from ._fit import set_seed as set_seed
from ._zoo import create_model as create_model
from ._zoo import list_models as list_models
from ._zoo import register_model as register_model

__all__ = [
    "Dataset",
    "accuracy",
    "compile_classifier",
    "create_model",
    "fit",
    "list_datasets",
    "list_models",
    "load_dataset",
    "register_dataset",
    "register_model",
    "set_seed",
]
