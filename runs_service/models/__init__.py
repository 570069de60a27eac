"""The data model: runs and what belongs to them."""

from runs_service.models.client import Client
from runs_service.models.evaluation import ServerEvaluation
from runs_service.models.metric import DatasetType, RunMetric
from runs_service.models.metric_block import MetricBlock
from runs_service.models.metric_summary import MetricSummary
from runs_service.models.rollup import AnalyticsRollup
from runs_service.models.run import Run, RunStatus, TrainingMode
from runs_service.models.summary import RunSummary
from runs_service.models.tag import RunTag

__all__ = [
    "AnalyticsRollup",
    "Client",
    "DatasetType",
    "MetricBlock",
    "MetricSummary",
    "Run",
    "RunMetric",
    "RunStatus",
    "RunSummary",
    "RunTag",
    "ServerEvaluation",
    "TrainingMode",
]
