"""Profiles: settings read from a TOML config file, below flags and environment variables.

The file is ``$XDG_CONFIG_HOME/baseten-training/config.toml`` (``~/.config/...``
when ``XDG_CONFIG_HOME`` is unset; ``%APPDATA%`` on Windows), or the file
``$BASETEN_TRAINING_CONFIG`` names::

    default_profile = "staging"

    [profiles.staging]
    base_url = "https://staging.example.com"
    api_key_env = "STAGING_BASETEN_API_KEY"   # read the key from this variable
    request_timeout = 30
    max_retries = 2

Precedence, highest first: a flag, the environment (``BASETEN_API_KEY``,
``BASETEN_BASE_URL``), the profile, the built-in default.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from ._exit import UsageError

__all__ = ["DEFAULTS", "Profile", "Settings", "config_path", "load_profile", "resolve_settings"]

DEFAULTS: Final = {"request_timeout": 60.0, "max_retries": 4, "commit_window": 60.0}


class Profile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One ``[profiles.NAME]`` table.

    Attributes:
        base_url: API base URL.
        api_key: The key itself (prefer ``api_key_env``: the file is then no secret).
        api_key_env: Name of an environment variable holding the key.
        request_timeout: Per-request timeout in seconds.
        max_retries: Retries of a failed request.
        commit_window: Seconds a create with a lost answer may still be committed.
    """

    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    request_timeout: float | None = None
    max_retries: int | None = None
    commit_window: float | None = None


class _ConfigFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    default_profile: str | None = None
    profiles: dict[str, Profile] = msgspec.field(default_factory=dict)


class Settings(msgspec.Struct, kw_only=True):
    """What the client is built with, and where each value came from.

    Attributes:
        api_key: The key, or None.
        base_url: The base URL, or None for the SDK's default.
        request_timeout: Seconds.
        max_retries: Count.
        commit_window: Seconds.
        profile: The profile used, if any.
        sources: Setting name -> ``flag``, ``env``, ``profile NAME`` or ``default``.
    """

    api_key: str | None
    base_url: str | None
    request_timeout: float
    max_retries: int
    commit_window: float
    profile: str | None
    sources: dict[str, str]


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file is looked for.

    Args:
        environ: The environment (default ``os.environ``).

    Returns:
        The path (it may not exist).
    """
    env = os.environ if environ is None else environ
    explicit = env.get("BASETEN_TRAINING_CONFIG")
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CONFIG_HOME")
    if not base:
        if sys.platform == "win32" and env.get("APPDATA"):
            base = env["APPDATA"]
        else:
            base = str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "baseten-training" / "config.toml"


def _read(path: Path) -> _ConfigFile:
    try:
        data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _ConfigFile()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    try:
        return msgspec.convert(data, _ConfigFile)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{path}: {exc}") from None


def load_profile(
    name: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str | None, Profile]:
    """The profile to use: ``name``, else ``$BASETEN_PROFILE``, else the file's default.

    Args:
        name: The ``--profile`` flag.
        environ: The environment (default ``os.environ``).

    Returns:
        ``(profile name or None, profile)``; an empty profile when none applies.

    Raises:
        UsageError: The file is invalid, or the named profile is not in it.
    """
    env = os.environ if environ is None else environ
    path = config_path(env)
    config = _read(path)
    chosen = name or env.get("BASETEN_PROFILE") or config.default_profile
    if chosen is None:
        return None, Profile()
    if chosen not in config.profiles:
        known = ", ".join(sorted(config.profiles)) or "none"
        raise UsageError(f"no profile {chosen!r} in {path} (profiles: {known})")
    return chosen, config.profiles[chosen]


def resolve_settings(
    *,
    profile_name: str | None,
    api_key: str | None,
    base_url: str | None,
    request_timeout: float | None,
    max_retries: int | None,
    commit_window: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Combine flags, environment and profile, in that order of precedence.

    Args:
        profile_name: ``--profile``.
        api_key: ``--api-key``.
        base_url: ``--base-url``.
        request_timeout: ``--request-timeout``.
        max_retries: ``--max-retries``.
        commit_window: ``--commit-window``.
        environ: The environment (default ``os.environ``).

    Returns:
        The settings.

    Raises:
        UsageError: The config file or profile is invalid.
    """
    env = os.environ if environ is None else environ
    name, profile = load_profile(profile_name, env)
    from_profile = f"profile {name}"
    sources: dict[str, str] = {}

    def pick(key: str, flag: Any, env_var: str | None, file_value: Any, default: Any) -> Any:
        if flag is not None:
            sources[key] = "flag"
            return flag
        if env_var is not None and env.get(env_var):
            sources[key] = f"env {env_var}"
            return env[env_var]
        if file_value is not None:
            sources[key] = from_profile
            return file_value
        sources[key] = "default"
        return default

    key_from_file = profile.api_key
    if profile.api_key_env is not None:
        key_from_file = env.get(profile.api_key_env) or None
        if key_from_file is None and api_key is None and not env.get("BASETEN_API_KEY"):
            raise UsageError(
                f"profile {name}: api_key_env names ${profile.api_key_env}, which is not set"
            )
    return Settings(
        api_key=pick("api_key", api_key, "BASETEN_API_KEY", key_from_file, None),
        base_url=pick("base_url", base_url, "BASETEN_BASE_URL", profile.base_url, None),
        request_timeout=float(
            pick(
                "request_timeout",
                request_timeout,
                None,
                profile.request_timeout,
                DEFAULTS["request_timeout"],
            )
        ),
        max_retries=int(
            pick("max_retries", max_retries, None, profile.max_retries, DEFAULTS["max_retries"])
        ),
        commit_window=float(
            pick(
                "commit_window",
                commit_window,
                None,
                profile.commit_window,
                DEFAULTS["commit_window"],
            )
        ),
        profile=name,
        sources=sources,
    )
