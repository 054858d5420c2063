"""The model library: GGUF files the person chose, checked before use, one per class."""

from deskmind.core.models.choice import MODEL_CLASSES, chosen_model, load_choices, set_chosen_model
from deskmind.core.models.gguf_check import GGUFInfo, check_gguf

__all__ = ["MODEL_CLASSES", "GGUFInfo", "check_gguf", "chosen_model", "load_choices",
           "set_chosen_model"]
