"""Decision engine core: open source vs closed source vs hybrid for a large model.

Knows nothing of Slack or retrieval. `model` loads the questionnaire data, `engine` scores answers
and explains them, `dialogue_store` keeps per-thread questionnaire state in the state database.
"""

from .engine import AnswerError, Change, Decision, Factor, Flip, evaluate, parse_answers
from .model import (
    DEFAULT_MODEL_PATH,
    DecisionModel,
    DecisionModelError,
    Option,
    Question,
    Recommendation,
    load_decision_model,
)

__all__ = [
    "AnswerError",
    "Change",
    "DEFAULT_MODEL_PATH",
    "Decision",
    "DecisionModel",
    "DecisionModelError",
    "Factor",
    "Flip",
    "Option",
    "Question",
    "Recommendation",
    "evaluate",
    "load_decision_model",
    "parse_answers",
]
