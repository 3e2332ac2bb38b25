"""`aftersales <process> open …` for every process in the registry, made from its request model.

A request field becomes an option named as the field declares (``--order`` for ``order_id``), with
its description as the help, its default as the option's default and a list as a repeatable
option; a field without a default is required. The command opens the case through the process's
``open`` — the same door the intake API, the tracker and the demo use.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from datetime import datetime
from typing import Any, Optional, Union, get_args, get_origin

import typer
from rich.console import Console
from rich.markup import escape

from aftersales.domain.rules import InvalidRequest
from aftersales.intake.registry import ProcessEntry

console = Console()


def _cli_type(annotation: Any) -> Any:
    """The type Typer parses into: the field's own, except times (read as text, parsed by the
    request model, which knows offsets) and optional values (None when not given)."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return Optional[_cli_type(inner[0])]
    if annotation is datetime:
        return str
    return annotation


def open_command(process: ProcessEntry):
    """The `open` command of one process."""
    parameters, annotations = [], {}
    for name, field in process.request.model_fields.items():
        flag = (field.json_schema_extra or {}).get("x-cli") if isinstance(field.json_schema_extra, dict) else None
        help_text = field.description or ""
        default = ... if field.is_required() else field.get_default(call_default_factory=True)
        if flag == "argument":
            info = typer.Argument(default, help=help_text, show_default=False)
        else:
            info = typer.Option(default, flag or f"--{name.replace('_', '-')}", help=help_text,
                                show_default=default not in (..., None, "", []))
        annotations[name] = _cli_type(field.annotation)
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotations[name]))

    def command(**values: Any) -> None:
        try:
            opened = asyncio.run(process.open(values))
        except InvalidRequest as exc:
            # escaped: the message may quote the user's input, which is not rich markup ("[/]" would crash)
            console.print(f"[bold red]error:[/] {escape(exc.message)}")
            raise typer.Exit(code=2) from None
        console.print(f"case [bold]{opened.case_id}[/] → flow run {opened.flow_run_name} ({opened.flow_run_id})")

    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {**annotations, "return": None}
    command.__doc__ = process.summary
    command.__name__ = f"open_{process.name.replace('-', '_')}"
    return command


def process_app(process: ProcessEntry) -> typer.Typer:
    group = typer.Typer(help=process.title, no_args_is_help=True)
    group.command("open")(open_command(process))
    return group
