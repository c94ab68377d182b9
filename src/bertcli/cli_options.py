"""A command's options made from its config class, so that a setting is declared once, in config.py.

Every field declared with `config.setting(..., flag="--x")` (in the class or in one of its
sections) becomes the command's `--x`: its type and default come from the field (the default the
command's own config class gives it, so finetune's `--lr` shows 2e-5), its help from the
declaration, with the default and the key appended. The values given on the command line come back
as a flags dict keyed by the dotted config key, which `config.load_config` lays over the YAML file
and under `--set`; a flag left out is None, "not given", so the recipe's value stands.

Checks that need only the value itself (choices, ranges, "must divide") stay in the config classes'
`__post_init__`, where the YAML recipe and `--set` reach them too.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, List, Literal, Optional

import typer

from bertcli.errors import UserError


@dataclass(frozen=True)
class CliSetting:
    key: str  # the dotted config key, e.g. "train.max_steps"
    hint: Any  # the field's type, Optional unwrapped
    optional: bool  # the field may be None
    meta: dict  # what config.setting recorded
    default: Any  # the command's config class's default

    @property
    def param(self) -> str:
        """The Python parameter name typer sees (positional arguments are named after it in errors)."""
        return self.key.replace(".", "__")

    @property
    def is_switch(self) -> bool:
        return self.hint is bool

    @property
    def is_int_list(self) -> bool:
        return typing.get_origin(self.hint) is list and typing.get_args(self.hint) == (int,)

    @property
    def is_str_list(self) -> bool:
        return typing.get_origin(self.hint) is list and typing.get_args(self.hint) == (str,)


def cli_settings(cls: type) -> list[CliSetting]:
    """The settings of `cls` (and its sections) that have a flag or are positional, in field order."""
    excluded = set(getattr(cls, "CLI_EXCLUDE", ()))
    found = [s for s in _walk(cls, cls(), "") if s.key not in excluded]
    seen: dict[str, str] = {}
    for s in found:
        for name in filter(None, (*s.meta["flag"].split("/"), s.meta["short"])):
            if name in seen:
                raise TypeError(f"{cls.__name__}: {name} is declared by both {seen[name]} and {s.key}")
            seen[name] = s.key
    return found


def _walk(cls: type, instance: Any, prefix: str):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, value = hints[f.name], getattr(instance, f.name)
        if dataclasses.is_dataclass(hint):
            yield from _walk(hint, value, f"{prefix}{f.name}.")
        elif f.metadata.get("flag") or f.metadata.get("argument"):
            inner, optional = _unwrap_optional(hint)
            yield CliSetting(f"{prefix}{f.name}", inner, optional, dict(f.metadata), value)


def _unwrap_optional(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if len(options) == 1:
            return options[0], True
    return hint, False


def help_text(s: CliSetting) -> str:
    notes = [s.key] if "." in s.key else []
    if s.meta["show_default"] and s.default not in (None, "", [], ()):
        shown = f"{s.default:g}" if isinstance(s.default, float) else str(s.default)
        notes.append(f"default {shown}")
    if not notes:
        return s.meta["help"]
    text = s.meta["help"]
    end = "." if text.endswith(".") else ""
    return f"{text[:len(text) - len(end)]} ({'; '.join(notes)}){end}"


def _typer_parameter(s: CliSetting) -> inspect.Parameter:
    meta = s.meta
    if meta["argument"]:
        default = typer.Argument(... if meta["required"] else s.default, help=help_text(s), show_default=False)
        return inspect.Parameter(s.param, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=str)
    names = [meta["flag"]] + ([meta["short"]] if meta["short"] else [])
    if s.is_str_list:
        annotation, empty = List[str], []
    elif s.is_int_list:
        annotation, empty = Optional[str], None  # "1,2,3", split by _value
    elif s.is_switch and "/" not in meta["flag"]:
        annotation, empty = bool, False  # a plain switch: given or not
    elif s.is_switch:
        annotation, empty = Optional[bool], None
    elif typing.get_origin(s.hint) is Literal:
        annotation, empty = Optional[str], None  # the loader checks the choice and suggests the closest
    else:
        annotation, empty = Optional[s.hint], None
    extra = {"min": meta["min"]} if meta["min"] is not None else {}
    default = typer.Option(... if meta["required"] else empty, *names, help=help_text(s), show_default=False,
                           **extra)
    return inspect.Parameter(s.param, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _value(s: CliSetting, given: Any) -> Any:
    """A parsed command-line value as the config loader takes it; None means "not given"."""
    if s.is_str_list:
        return [str(item) for item in given] or None
    if s.is_int_list and given is not None:
        try:
            return [int(part) for part in given.split(",") if part.strip()]
        except ValueError:
            flag = s.meta["flag"]
            raise UserError(f"{flag} {given!r}: expected integers separated by commas, e.g. {flag} 1,2,3") from None
    if s.is_switch and "/" not in s.meta["flag"] and given is False:
        return None
    return given


def config_command(app: typer.Typer, name: str, cls: type, **command_options) -> Callable:
    """Register `func` as command `name` with its own parameters plus one option per setting of `cls`.

    `func` declares what is not a setting (a recipe argument, `--set`, `--resume`) and takes a
    `flags` keyword: the settings given on the command line, by dotted key, for `load_config`.
    """
    settings = cli_settings(cls)

    def register(func: Callable) -> Callable:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "flags"]
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        generated = [_typer_parameter(s) for s in settings]
        positional = [p for p, s in zip(generated, settings) if s.meta["argument"]]
        options = [p for p, s in zip(generated, settings) if not s.meta["argument"]]

        @functools.wraps(func)
        def command(**given):
            flags = {s.key: _value(s, given.pop(s.param)) for s in settings}
            return func(flags=flags, **given)

        parameters = positional + own + options
        command.__signature__ = inspect.Signature(parameters)
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        del command.__wrapped__  # typer must read the signature above, not func's
        app.command(name, **command_options)(command)
        return func

    return register
