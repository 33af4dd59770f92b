"""Flags shared by commands: the run configuration (fields, declared options, a model function's
options) and the bind address of the servers."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress

from workbench.config import RunConfig
from workbench.errors import ConfigError

LOOPBACK_HELP = "bind address (loopback unless --allow-remote)"


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field and per option a task or model declares; values are parsed
    and checked by make_config. A model function's own options come as --NAME VALUE too."""
    group = parser.add_argument_group("run configuration (see RunConfig)")
    for f in dataclasses.fields(RunConfig):
        if f.name not in RunConfig.field_names():
            continue
        default = f.default if f.default != "" else "task default"
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, metavar=f.name.upper(),
                           help=f"{f.metadata.get('help', '')} (default: {default})")
    group = parser.add_argument_group("options of one task or model (a model function's own: --NAME VALUE)")
    for name, (option, owners) in declared_flags().items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar=name.upper(),
                           help=f"{', '.join(owners)}: {option.help} (default: {option.default})")
    parser.set_defaults(model_options={})


def declared_flags() -> dict:
    """Option name -> (option, ["task" or "task/model", ...]) over every registered task."""
    from workbench.tasks import get_task, task_names

    found: dict = {}
    for name in task_names():
        task = get_task(name)
        owned = [(option, name) for option in task.options_for("")]
        owned += [(option, f"{name}/{model}") for model, options in task.model_options.items() for option in options]
        for option, owner in owned:
            found.setdefault(option.name, (option, []))[1].append(owner)
    return found


def model_option_flags(tokens: list[str]) -> dict[str, str]:
    """`--filters 64 --dropout-rate=0.3` -> {"filters": "64", "dropout_rate": "0.3"}; make_config checks them."""
    values, tokens = {}, list(tokens)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or len(token) < 3:
            raise ConfigError("arguments", token, "--NAME VALUE pairs (a model function's own options)")
        name, has_value, value = token[2:].partition("=")
        if not has_value:
            if not tokens or tokens[0].startswith("--"):
                raise ConfigError(name.replace("-", "_"), None, "a value after the flag")
            value = tokens.pop(0)
        values[name.replace("-", "_")] = value
    return values


def config_values(args: argparse.Namespace) -> dict:
    """What the config flags gave (fields, declared options, a model function's options)."""
    names = [*RunConfig.field_names(), *declared_flags()]
    return {**{name: getattr(args, name) for name in names if getattr(args, name, None) is not None},
            **args.model_options}


def add_bind_flags(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help=LOOPBACK_HELP)
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding a non-loopback address (anyone who can reach it can use it)")


def require_loopback(host: str, allow_remote: bool, command: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ConfigError("host", host, f"a loopback address (127.0.0.1, ::1, localhost): `workbench {command}` "
                          "serves your runs and code without access control; pass --allow-remote to bind "
                          f"{host} anyway")
