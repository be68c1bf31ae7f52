"""What a message carries, checked before its handler runs: a method's params against the
method's lsprotocol type, and a command's arguments against its handler's signature; and an
answer's result against its request's type.

Params that do not fit are answered -32602 with the type they should have been.

`workspace/executeCommand` carries its arguments as a bare JSON list. A client
that sends too few, too many or the wrong kind is answered -32602 with what the
command takes (`coda.regenerateSelection takes the arguments [uri: string,
selection: Range]; got 0`), never with Python's own TypeError text.
"""

from __future__ import annotations

import inspect
import types
import typing

import attrs
from lsprotocol import types as T

from .messages import INVALID_PARAMS, RpcError


def method_params(converter, method: str, raw):
    """`raw` as the params type of `method` (as it is, for a method lsprotocol does not type), or RpcError."""
    params_type = T.METHOD_TO_TYPES.get(method, (None, None, None))[2]
    if params_type is None:
        return raw
    try:
        return converter.structure(raw, params_type)
    except Exception as exc:
        detail = str(exc).split("\n", 1)[0]
        raise RpcError(INVALID_PARAMS, f"the params of {method} are not a valid {params_type.__name__} ({detail})")


def method_result(converter, method: str, raw):
    """`raw`, an answer's result to a request of `method`, as the method's result type, or RpcError."""
    result_type = attrs.fields_dict(T.METHOD_TO_TYPES[method][1])["result"].type
    try:
        return converter.structure(raw, result_type)
    except Exception as exc:
        raise RpcError(INVALID_PARAMS, f"an answer to {method} that is not a valid result: {raw!r:.200}") from exc


def command_call(converter, commands: dict, name: str, given: list) -> tuple[typing.Callable, list]:
    """The handler of the command `name` and `given` as its arguments, or RpcError naming what it takes."""
    handler = commands.get(name)
    if handler is None:
        raise RpcError(INVALID_PARAMS, f"unknown command {name!r}; coda-lsp has {', '.join(commands)}")
    return handler, command_arguments(converter, name, handler, given)


def command_arguments(converter, name: str, handler, given: list) -> list:
    """`given` converted to the types `handler(server, ...)` declares, or RpcError naming what it takes."""
    hints = typing.get_type_hints(handler)
    wanted = list(inspect.signature(handler).parameters.values())[1:]  # after the server
    takes = ", ".join(f"{p.name}: {_type_name(hints[p.name])}" + ("" if p.default is p.empty else " (optional)")
                      for p in wanted)
    required = sum(p.default is p.empty for p in wanted)
    if not required <= len(given) <= len(wanted):
        raise RpcError(INVALID_PARAMS, f"{name} takes the arguments [{takes}]; got {len(given)}")
    arguments = []
    for parameter, value in zip(wanted, given):
        hint = hints[parameter.name]
        try:
            arguments.append(_structure_strictly(converter, value, hint))
        except Exception:
            raise RpcError(INVALID_PARAMS, f"{name} takes the arguments [{takes}]; its argument {parameter.name} "
                                           f"is not a {_type_name(hint)}: {value!r:.80}") from None
    return arguments


def _options(hint) -> tuple:
    """The types a hint allows: the members of a union (`X | None`, Optional[X]), else the hint."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _structure_strictly(converter, value, hint):
    """`value` as `hint`; a scalar must be one already (cattrs would make "3" of 3, or of a dict)."""
    options = _options(hint)
    if value is None and type(None) in options:
        return None
    scalars = [t for t in options if t in (str, int, bool)]
    if scalars:
        if not any(type(value) is t for t in scalars):
            raise TypeError(f"{value!r:.80} is not a {hint}")
        return value
    return converter.structure(value, hint)


def _type_name(hint) -> str:
    names = {str: "string", int: "integer", bool: "boolean"}
    return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in _options(hint) if t is not type(None))
