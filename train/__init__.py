"""edgeship.train — datasets, the model zoo and the fit loop (needs ``edgeship[build]``)."""

from ._anomaly import load_anomaly_dataset as load_anomaly_dataset
from ._anomaly import one_class_split as one_class_split
from ._anomaly import pca_baseline as pca_baseline
from ._baselines import baselines as baselines
from ._baselines import chance_check as chance_check
from ._batchnorm import recalibrate_batchnorm as recalibrate_batchnorm
from ._batchnorm import set_batchnorm_momentum as set_batchnorm_momentum
from ._cluster import WorkerRole as WorkerRole
from ._cluster import local_cluster as local_cluster
from ._cluster import worker_role as worker_role
from ._datasets import Dataset as Dataset
from ._datasets import TrainingData as TrainingData
from ._datasets import list_datasets as list_datasets
from ._datasets import load_dataset as load_dataset
from ._datasets import register_dataset as register_dataset
from ._defaults import TrainingPlan as TrainingPlan
from ._defaults import plan_training as plan_training
from ._evaluate import classification_report as classification_report
from ._evaluate import evaluate as evaluate
from ._evaluate import macro_f1 as macro_f1
from ._fit import TrainOptions as TrainOptions
from ._fit import accuracy as accuracy
from ._fit import compile_classifier as compile_classifier
from ._fit import fine_tune as fine_tune
from ._fit import fit as fit
from ._fit import learning_rate_schedule as learning_rate_schedule
from ._fit import set_seed as set_seed
from ._fit import train_model as train_model
from ._images import ImageFolderOptions as ImageFolderOptions
from ._images import decision_set as decision_set
from ._images import make_augmenter as make_augmenter
from ._strategy import mixed_precision_policy as mixed_precision_policy
from ._strategy import select_strategy as select_strategy
from ._strategy import strategy_plan as strategy_plan
from ._text import text_model as text_model
from ._weights import load_pretrained as load_pretrained
from ._weights import set_trainable as set_trainable
from ._zoo import ModelInfo as ModelInfo
from ._zoo import create_model as create_model
from ._zoo import list_models as list_models
from ._zoo import model_info as model_info
from ._zoo import register_model as register_model

__all__ = [
    "Dataset",
    "ImageFolderOptions",
    "ModelInfo",
    "TrainOptions",
    "TrainingData",
    "TrainingPlan",
    "WorkerRole",
    "accuracy",
    "baselines",
    "chance_check",
    "classification_report",
    "compile_classifier",
    "create_model",
    "decision_set",
    "evaluate",
    "fine_tune",
    "fit",
    "learning_rate_schedule",
    "list_datasets",
    "load_anomaly_dataset",
    "list_models",
    "load_pretrained",
    "load_dataset",
    "local_cluster",
    "macro_f1",
    "make_augmenter",
    "mixed_precision_policy",
    "model_info",
    "one_class_split",
    "pca_baseline",
    "plan_training",
    "recalibrate_batchnorm",
    "register_dataset",
    "register_model",
    "select_strategy",
    "set_batchnorm_momentum",
    "set_seed",
    "set_trainable",
    "strategy_plan",
    "text_model",
    "train_model",
    "worker_role",
]
