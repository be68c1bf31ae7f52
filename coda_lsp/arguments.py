"""A command's arguments, checked against its handler's signature before it runs.

`workspace/executeCommand` carries its arguments as a bare JSON list. A client
that sends too few, too many or the wrong kind is answered -32602 with what the
command takes (`coda.regenerateSelection takes the arguments [uri: string,
selection: Range]; got 0`), never with Python's own TypeError text.
"""

from __future__ import annotations

import inspect
import types
import typing

from .jsonrpc import INVALID_PARAMS, RpcError


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
