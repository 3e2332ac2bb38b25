"""The processes, each declared once: its rulebook section, its request, how it opens, its demo cases.

Every module of ``aftersales.intake`` that declares ``PROCESS = ProcessEntry(...)`` is a process. The CLI's
``aftersales <process> open``, the intake API's ``POST /<route>`` and ``make run``'s demo cases are
made from these entries; ``serve`` finds the flows themselves in ``aftersales.flows``. So a new
process is its flow module, its forms, its rules and one intake module with its entry — nothing in
the CLI, the API, the demo or serve changes.

A request field says how it is typed on the command line through ``cli(...)``: the option's name
(``--order`` for ``order_id``) and, in its description, the help both show.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aftersales.domain.masking import mask_text
from aftersales.domain.rules import InvalidRequest, shown
from aftersales.intake.core import Opened


class ProcessRequest(BaseModel):
    """What a person (CLI) or a staff system (API) sends to open a case. The shapes are checked
    here; the business checks (the order exists, the window is open …) are the process's own."""

    model_config = ConfigDict(extra="forbid")


def cli(flag: str | None = None, description: str = "", default: Any = ..., **kwargs: Any) -> Any:
    """A request field with its command-line spelling: ``flag`` is the option (``--order``), or
    ``"argument"`` for a positional argument; without it the option is ``--field-name``."""
    extra = {"x-cli": flag} if flag else None
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


@dataclass(frozen=True)
class ProcessEntry:
    name: str  # the CLI group (`aftersales return open`) and the run's `process:` tag
    section: str  # the rulebook's section (docs/rulebook.md)
    title: str  # "Returns 退货": the CLI group's help
    route: str  # the intake API's `POST /<route>`
    request: type[ProcessRequest]
    # the door: checks the request (InvalidRequest when it is bad; nothing is recorded) and starts
    # the case's run, its case id the idempotency key
    opener: Callable[..., Awaitable[Opened]]
    summary: str  # what `open` does, for the CLI's and the API's help
    demo: tuple[ProcessRequest, ...] = field(default=())  # `make run`'s cases, on the sandbox's seeded orders

    async def open(self, request: ProcessRequest | dict[str, Any]) -> Opened:
        """Open the case a request asks for (InvalidRequest when it is bad; then nothing changed)."""
        checked = request if isinstance(request, self.request) else self.checked(request)
        return await self.opener(**checked.model_dump())

    def checked(self, values: dict[str, Any]) -> ProcessRequest:
        """The request's shape (types, unknown fields), said in our error's words."""
        try:
            return self.request.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "request"
            got = f" (got {shown(first['input'], mask=mask_text)})" if "input" in first and first.get("type") != "missing" else ""
            raise InvalidRequest(f"{where}_malformed".replace(".", "_"),
                                 f"{where} 格式不正确 {where}: {first.get('msg', '')}{got}") from None


@cache
def processes() -> tuple[ProcessEntry, ...]:
    """Every declared process, in the rulebook's order."""
    import aftersales.intake as package

    found = []
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        if isinstance(getattr(module, "PROCESS", None), ProcessEntry):
            found.append(module.PROCESS)
    return tuple(sorted(found, key=lambda process: [int(part) for part in process.section.lstrip("§").split(".")]))


def process(name: str) -> ProcessEntry:
    for candidate in processes():
        if candidate.name == name:
            return candidate
    raise LookupError(f"no process {name!r}; one of {', '.join(p.name for p in processes())}")
