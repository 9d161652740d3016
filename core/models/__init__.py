"""PS prediction models behind one interface (see :mod:`core.models.base`)."""
from .base import PSModel, list_models, load_model, register_model, ModelInfo, models_dir

__all__ = ["PSModel", "list_models", "load_model", "register_model", "ModelInfo", "models_dir"]
