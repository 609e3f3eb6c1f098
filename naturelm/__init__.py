"""naturelm: one language model for text, molecules, reactions, proteins, DNA, RNA and materials."""
from naturelm.errors import ConfigError, DataSourceMissing, EntityError, NatureLMError, TagError
from naturelm.language import NatureTokenizer

__version__ = "0.1.0"
__all__ = ["NatureTokenizer", "NatureLMError", "EntityError", "TagError", "DataSourceMissing", "ConfigError", "NatureLM"]


def __getattr__(name):  # the model facade imports torch: load it only when asked for
    if name == "NatureLM":
        from naturelm.api import NatureLM

        return NatureLM
    raise AttributeError(name)
