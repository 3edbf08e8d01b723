"""The flow file format as Pydantic models: trigger, `when`, steps, and per-step policies.

A flow file is data. Template strings (`"{{ event.body.id }}"`) stay strings here; they
are compiled by `flows.compile` once per flow version. `docs/reference/flow-file.md`
describes every field; `seamflow flow schema` prints the JSON Schema generated from here.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from seamflow.flows.approval_spec import (
    ApprovalLevel,
    ApprovalNotify,
    ApprovalSpec,
    Assignee,
)
from seamflow.flows.spec_base import Duration, parse_duration
from seamflow.flows.spec_base import SpecModel as _Model

__all__ = [
    "STEP_KINDS",
    "TRIGGER_KINDS",
    "ActionStep",
    "ApprovalLevel",
    "ApprovalNotify",
    "ApprovalSpec",
    "ApprovalStep",
    "Assignee",
    "Backoff",
    "BranchStep",
    "CallStep",
    "ConsumeTrigger",
    "Duration",
    "EmitSpec",
    "EmitStep",
    "Flow",
    "ForeachStep",
    "ManualTrigger",
    "OaTrigger",
    "OnError",
    "PollTrigger",
    "RateLimitSpec",
    "RespondSpec",
    "RespondStep",
    "Retry",
    "ScheduleTrigger",
    "SignatureSpec",
    "Step",
    "TransformStep",
    "Trigger",
    "WaitSpec",
    "WaitStep",
    "WebhookTrigger",
    "parse_duration",
    "step_kind",
]

_ID = r"^[a-z][a-z0-9_]{0,62}$"
_FLOW_ID = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


class OnError(StrEnum):
    """What happens when a step (or the run) fails after its retries."""

    FAIL = "fail"
    """The run ends as `failed`."""
    CONTINUE = "continue"
    """The step's output is `{"error": ...}` and the run goes on."""
    DEAD_LETTER = "dead_letter"
    """The run is parked as a dead letter, to be replayed after a fix."""


class Backoff(StrEnum):
    """How the delay between attempts grows."""

    EXPONENTIAL = "exponential"
    FIXED = "fixed"


class Retry(_Model):
    """Retry policy of a step for transient failures (timeouts, 429, 5xx)."""

    attempts: int = Field(3, ge=1, le=100, description="total attempts, the first included")
    backoff: Backoff = Backoff.EXPONENTIAL
    initial_delay: Duration = timedelta(seconds=1)
    max_delay: Duration = timedelta(minutes=5)
    jitter: bool = True


class SignatureSpec(_Model):
    """HMAC-SHA256 signature of the raw request body, checked before an event is accepted."""

    secret: str = Field(description="template resolving to the shared secret, e.g. {{ secrets.crm }}")
    header: str = "X-Signature"
    prefix: str = Field("", description="text before the hex digest, e.g. 'sha256='")
    timestamp_header: str | None = Field(
        None,
        description="header with the Unix time (seconds) the sender signed at; the HMAC then covers"
        " '<timestamp>.<body>', a stale timestamp is refused and a signature is accepted once",
    )
    tolerance: Duration = Field(
        timedelta(minutes=5), description="how far the timestamp may be from the server's clock (either way)"
    )


class RateLimitSpec(_Model):
    """At most `requests` webhook requests per `per`, per process; more are answered 429 with Retry-After."""

    requests: int = Field(ge=1, le=1_000_000)
    per: Duration = timedelta(seconds=1)


class WebhookTrigger(_Model):
    """`POST /hooks/<path>` starts a run; answers 202 with the run id, or waits for `respond`."""

    path: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")
    signature: SignatureSpec | None = None
    dedupe_key: str | None = Field(None, description="template; the same key twice starts one run")
    rate_limit: RateLimitSpec | None = Field(None, description="requests accepted per period; more get 429")
    mode: Literal["async", "sync"] = "async"
    response_timeout: Duration = timedelta(seconds=10)

    @field_validator("path", mode="before")
    @classmethod
    def _no_leading_slash(cls, value: object) -> object:
        # Before the pattern: "/orders" would get only "expected a URL path of letters …".
        if isinstance(value, str) and value.startswith("/") and value.strip("/"):
            bare = value.lstrip("/")
            raise ValueError(f"expected the path without its leading slash: {bare} (served at /hooks/{bare})")
        return value


class ScheduleTrigger(_Model):
    """Start a run on a cron schedule in a time zone, or every fixed interval."""

    cron: str | None = Field(None, description="five fields: minute hour day month weekday")
    timezone: str = Field("UTC", description="IANA time zone of the cron schedule")
    every: Duration | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError("expected a cron expression such as '0 9 * * 1-5' (minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, OSError, ZoneInfoNotFoundError):
            raise ValueError("expected an IANA time zone such as Asia/Shanghai or UTC") from None
        return value

    @field_validator("every")
    @classmethod
    def _positive_every(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(seconds=1):
            raise ValueError("expected an interval of at least 1s")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleTrigger:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron or every")
        return self


class PollTrigger(_Model):
    """Ask a connection's feed for what is new since the stored cursor, every interval."""

    connection: str = Field(pattern=_ID, description="a connection of connections.yaml")
    feed: str = Field(pattern=_ID, description="a poll feed of the connection's connector, e.g. rows")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the feed's settings")
    every: Duration = Field(timedelta(seconds=30), description="pause between polls when nothing more is waiting")
    batch: int = Field(500, ge=1, le=10_000, description="at most this many items per poll")
    stall_after: Duration = Field(timedelta(minutes=10), description="warn when no poll has succeeded for this long")

    @field_validator("every")
    @classmethod
    def _positive_every(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError("expected an interval of at least 100ms")
        return value


class ConsumeTrigger(_Model):
    """Take messages from a broker connection's feed (queue, topic, stream) as they arrive."""

    connection: str = Field(pattern=_ID, description="a connection of connections.yaml")
    feed: str = Field(pattern=_ID, description="a consume feed of the connection's connector, e.g. queue")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the feed's settings")
    stall_after: Duration = Field(
        timedelta(minutes=10), description="warn when the consumer has been failing for this long"
    )


class ManualTrigger(_Model):
    """Runs started from the CLI (`seamflow run`) or the API."""


class OaTrigger(_Model):
    """An OA platform's approval callbacks at `/hooks/<path>`, verified and decrypted (docs/howto/oa-approvals.md).

    DingTalk and WeCom: `msg_signature` over the encrypted message with `token`, AES-256-CBC with
    `aes_key` (the EncodingAESKey) for `receiver_id`; Feishu: `X-Lark-Signature` and `encrypt` with
    `aes_key` (the Encrypt Key), `token` the Verification Token. URL-verification handshakes are
    answered without starting a run; the same event delivered twice starts one run.
    """

    platform: Literal["dingtalk", "wecom", "feishu"]
    path: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")
    token: str = Field(description="template: the callback Token (Feishu: Verification Token), e.g. {{ secrets.x }}")
    aes_key: str = Field(description="template: the EncodingAESKey (Feishu: Encrypt Key), e.g. {{ secrets.x }}")
    receiver_id: str | None = Field(
        None, description="template: DingTalk app key (or corp id, suite key) / WeCom corp id; not for Feishu"
    )
    dedupe_key: str | None = Field(None, description="template; default: the platform and its event id")
    max_age: Duration = Field(timedelta(minutes=5), description="oldest timestamp accepted; nonces are kept as long")

    @model_validator(mode="after")
    def _receiver_for_encrypted(self) -> OaTrigger:
        if self.platform != "feishu" and not self.receiver_id:
            raise ValueError(f"give receiver_id for {self.platform}: the app key or corp id the messages are for")
        return self


TRIGGER_KINDS = ("webhook", "schedule", "manual", "poll", "consume", "oa")


class Trigger(_Model):
    """Exactly one kind of trigger."""

    webhook: WebhookTrigger | None = None
    schedule: ScheduleTrigger | None = None
    manual: ManualTrigger | None = None
    poll: PollTrigger | None = None
    consume: ConsumeTrigger | None = None
    oa: OaTrigger | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        given = [k for k in TRIGGER_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one trigger of {', '.join(TRIGGER_KINDS)}; got {given or 'none'}")
        return self

    @property
    def kind(self) -> str:
        """One of `TRIGGER_KINDS`."""
        return next(k for k in TRIGGER_KINDS if getattr(self, k) is not None)

    @property
    def hook_path(self) -> str | None:
        """The path under `/hooks/` of a `webhook` or `oa` trigger, without slashes at its ends."""
        hook = self.webhook or self.oa
        return hook.path.strip("/") if hook is not None else None

    @property
    def feed(self) -> PollTrigger | ConsumeTrigger | None:
        """The connection feed this trigger reads, for `poll` and `consume` triggers."""
        return self.poll or self.consume


class _StepBase(_Model):
    id: str = Field(pattern=_ID, description="unique within the flow; outputs are `steps.<id>`")
    retry: Retry | None = None
    timeout: Duration | None = None
    idempotency_key: str | None = Field(None, description="template; default run + step + iteration")
    on_error: OnError | None = Field(None, description="default: the flow's on_error")


class ActionStep(_StepBase):
    """Call `connection.action` with inputs."""

    action: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    output: Any = Field(
        None,
        description="template mapping the action's result (`result`) to the step's output, "
        "e.g. {id: '{{ result.body.data.id }}'}; default: the result itself",
    )


class TransformStep(_StepBase):
    """Build a new value (object, list, scalar) from the context; no effect outside."""

    transform: Any


class BranchStep(_StepBase):
    """`if` a condition holds run `then`, else run `else`."""

    if_: str = Field(alias="if")
    then: list[Step]
    else_: list[Step] = Field(default_factory=list, alias="else")


class ForeachStep(_StepBase):
    """Run `steps` once per item of a list, at most `concurrency` at a time."""

    foreach: str
    as_: str = Field("item", alias="as", pattern=_ID)
    concurrency: int = Field(1, ge=1, le=256)
    steps: list[Step]


class CallStep(_StepBase):
    """Start another flow as a child run and wait for its result."""

    call: str = Field(pattern=_FLOW_ID)
    input: Any = None


class RespondSpec(_Model):
    """The answer to a synchronous webhook."""

    status: int = Field(200, ge=200, le=599)
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)


class RespondStep(_StepBase):
    """Answer the synchronous webhook that started the run."""

    respond: RespondSpec


class WaitSpec(_Model):
    """Wait for a duration, until an instant, or for a signal (with a timeout)."""

    duration: Duration | None = None
    until: str | None = Field(None, description="template giving an ISO-8601 instant")
    signal: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    key: str | None = Field(None, description="template; the correlation key a signal must match")
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WaitSpec:
        given = [k for k in ("duration", "until", "signal") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of duration, until, signal; got {given or 'none'}")
        if self.signal is None and (self.key is not None or self.timeout is not None):
            raise ValueError("key and timeout belong to a signal wait")
        return self


class WaitStep(_StepBase):
    """Park the run durably; no worker is held while it waits."""

    wait: WaitSpec


class EmitSpec(_Model):
    """A business event for the event log: what happened, when, to which objects."""

    activity: str = Field(min_length=1, max_length=200)
    time: str | None = Field(None, description="template; default: now")
    objects: dict[str, Any] = Field(default_factory=dict, description="object type -> id or ids")
    attributes: dict[str, Any] = Field(default_factory=dict)


class EmitStep(_StepBase):
    """Append a business event to the event log."""

    emit: EmitSpec


class ApprovalStep(_StepBase):
    """Ask people to approve, level by level; the output is the decision and who decided what."""

    approval: ApprovalSpec


STEP_KINDS: dict[str, type[_StepBase]] = {
    "action": ActionStep,
    "transform": TransformStep,
    "if": BranchStep,
    "foreach": ForeachStep,
    "call": CallStep,
    "respond": RespondStep,
    "wait": WaitStep,
    "emit": EmitStep,
    "approval": ApprovalStep,
}
"""The key that says which kind a step is; exactly one must be present."""


def step_kind(value: Any) -> str | None:
    """Return the kind key of a raw or parsed step, or None if it has none or several."""
    if isinstance(value, dict):
        present = [k for k in STEP_KINDS if k in value]
        return present[0] if len(present) == 1 else None
    for key, cls in STEP_KINDS.items():
        if isinstance(value, cls):
            return key
    return None


Step = Annotated[
    Annotated[ActionStep, Tag("action")]
    | Annotated[TransformStep, Tag("transform")]
    | Annotated[BranchStep, Tag("if")]
    | Annotated[ForeachStep, Tag("foreach")]
    | Annotated[CallStep, Tag("call")]
    | Annotated[RespondStep, Tag("respond")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[EmitStep, Tag("emit")]
    | Annotated[ApprovalStep, Tag("approval")],
    Discriminator(
        step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


class Flow(_Model):
    """A flow file."""

    id: str = Field(pattern=_FLOW_ID)
    name: str | None = None
    description: str | None = None
    owner: str | None = Field(None, max_length=100, description="login of the flow's owner: approves its promotions")
    trigger: Trigger
    when: str | None = Field(None, description="template; the run starts only if it is true")
    steps: list[Step] = Field(min_length=1)
    on_error: OnError = OnError.DEAD_LETTER
    concurrency: int | None = Field(None, ge=1, le=10_000, description="runs of this flow at once")
    manual_minutes: float | None = Field(
        None, gt=0, le=10_000, description="minutes a person needed per run before the flow: the work it saves"
    )


BranchStep.model_rebuild()
ForeachStep.model_rebuild()
Flow.model_rebuild()
