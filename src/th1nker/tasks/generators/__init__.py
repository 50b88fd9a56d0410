from th1nker.tasks.generators.arithmetic import ArithmeticProblems, sample_arithmetic
from th1nker.tasks.generators.base import Encoded, Problems, decimal
from th1nker.tasks.generators.base_convert import BaseConvertProblems, sample_base_convert
from th1nker.tasks.generators.factorize import (
    FactorizeProblems,
    sample_factorize,
    sample_factorize_log_uniform,
)
from th1nker.tasks.generators.memory_tasks import (
    CopyProblems,
    RecallProblems,
    ReverseProblems,
    sample_recall,
    sample_sequences,
)
from th1nker.tasks.generators.mqar import MQARProblems, sample_mqar

__all__ = [
    "ArithmeticProblems",
    "BaseConvertProblems",
    "CopyProblems",
    "Encoded",
    "MQARProblems",
    "FactorizeProblems",
    "Problems",
    "RecallProblems",
    "ReverseProblems",
    "decimal",
    "sample_arithmetic",
    "sample_base_convert",
    "sample_factorize",
    "sample_factorize_log_uniform",
    "sample_mqar",
    "sample_recall",
    "sample_sequences",
]
