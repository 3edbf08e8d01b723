"""The recording sandbox: stands in for every connection of a rehearsed run, so nothing reaches a target.

Each call a step makes is recorded as an `Effect` (step, connection, action, the request) and
answered from, in this order: the recording of a live run (its step's journaled output, for a
shadow run), a fixture (by step id, then by `connection.action`), or the default answer `{}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from seamflow import connectors, errors, redact
from seamflow.ids import Json

__all__ = ["Answer", "AnsweredFrom", "Answers", "Effect", "Recorder", "SandboxConnector", "parse_fixtures"]


class AnsweredFrom(StrEnum):
    """Where the sandbox took a call's answer from."""

    RECORDING = "recording"
    FIXTURE = "fixture"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the sandbox answers a call: an output, or a permanent failure with a message."""

    output: Json = None
    error: str | None = None
    source: AnsweredFrom = AnsweredFrom.FIXTURE


_DEFAULT = Answer({}, None, AnsweredFrom.DEFAULT)


@dataclass(frozen=True, slots=True)
class Answers:
    """The answers of one rehearsed run.

    Attributes:
        recording: step path -> answer, from a live run's journal (shadow runs).
        fixtures: step id or `connection.action` -> answer (flow tests, the editor).
    """

    recording: Mapping[str, Answer] = field(default_factory=dict)
    fixtures: Mapping[str, Answer] = field(default_factory=dict)

    def answer(self, path: str | None, call: str) -> Answer:
        """The answer to `call` (`connection.action`) made by the step at `path` (None: unknown)."""
        if path is not None:
            if path in self.recording:
                return self.recording[path]
            step_id = path.rsplit(".", 1)[-1].split("[", 1)[0]
            for key in (path, step_id):
                if key in self.fixtures:
                    return self.fixtures[key]
        return self.fixtures.get(call, _DEFAULT)


@dataclass(frozen=True, slots=True)
class Effect:
    """A call a rehearsed step made, captured instead of sent."""

    step: str
    connection: str
    action: str
    request: Json
    answered_from: AnsweredFrom

    def as_json(self) -> dict[str, Json]:
        """The form of `POST /api/v1/flows/test`'s `effects`; the request with secrets masked."""
        return {
            "step": self.step,
            "connection": self.connection,
            "action": self.action,
            "request": redact.mask(self.request),
            "answered_from": self.answered_from.value,
        }


class _FixtureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Any = None
    error: str | None = None


def parse_fixtures(raw: Json, where: str = "fixtures") -> dict[str, Answer]:
    """Fixtures from their file/JSON form: `{key: {answer: any} | {error: "message"}}`.

    A key is a step id or a `connection.action`.

    Raises:
        errors.InvalidInput: the fixtures are not of that form (each problem named by its key).
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise errors.InvalidInput(
            f"{where}: got {type(raw).__name__}; expected an object of step id or connection.action"
            " -> {answer: …} or {error: …}",
            code="flow_test.fixture_invalid",
        )
    found: dict[str, Answer] = {}
    for key, value in raw.items():
        try:
            item = _FixtureSpec.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            place = ".".join(str(p) for p in first["loc"])
            raise errors.InvalidInput(
                f"{where}.{key}{'.' + place if place else ''}: {first['msg']}; expected {{answer: …}} or {{error: …}}",
                code="flow_test.fixture_invalid",
            ) from None
        found[str(key)] = Answer(item.answer, item.error, AnsweredFrom.FIXTURE)
    return found


class Recorder:
    """Holds the answers of the run being rehearsed and the effects its steps made."""

    def __init__(self) -> None:
        self.answers = Answers()
        self.effects: list[Effect] = []
        self.run_prefix = ""

    def start(self, run_id: str, answers: Answers) -> None:
        """Record the calls of run `run_id` from now on, answered from `answers`."""
        self.answers = answers
        self.effects = []
        self.run_prefix = f"{run_id}:"

    def path_of(self, idempotency_key: str) -> str | None:
        """The step path of a call: the executor's default key is `<run id>:<step path>`."""
        return idempotency_key.removeprefix(self.run_prefix) if idempotency_key.startswith(self.run_prefix) else None


class SandboxConnector:
    """Stands in for one connection: records each call and answers it from the recorder's answers."""

    kind: ClassVar[str] = "sandbox"
    Config: ClassVar[type[BaseModel]] = BaseModel
    actions: ClassVar[Mapping[str, connectors.Action]] = {}

    def __init__(self, name: str, recorder: Recorder) -> None:
        self._name = name
        self._recorder = recorder

    async def open(self, connection: connectors.Connection) -> None:
        """Nothing to open: no target is ever reached."""

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Record the call; answer it, or fail permanently if its answer is an error."""
        path = self._recorder.path_of(idempotency_key)
        call = f"{self._name}.{action}"
        answer = self._recorder.answers.answer(path, call)
        step = path if path is not None else call
        self._recorder.effects.append(Effect(step, self._name, action, params, answer.source))
        if answer.error is not None:
            raise errors.Permanent(answer.error, where=call, code="flow_test.fixture_error")
        return answer.output

    async def close(self) -> None:
        """Nothing to close."""
