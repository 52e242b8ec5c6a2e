"""The YAML configuration: model, loader and secrets."""

from acmegate.common.config.loader import ConfigError, load_config, parse_config
from acmegate.common.config.model import Config, seconds
from acmegate.common.config.secrets import Secret, SecretUnavailable

__all__ = [
    "Config",
    "ConfigError",
    "Secret",
    "SecretUnavailable",
    "load_config",
    "parse_config",
    "seconds",
]
