"""The `approval` step's settings: levels, assignees from the directory, due dates, notices."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from seamflow.flows.spec_base import Duration
from seamflow.flows.spec_base import SpecModel as _Model

__all__ = ["ASSIGNEE_KINDS", "NOTICE_KINDS", "ApprovalLevel", "ApprovalNotify", "ApprovalSpec", "Assignee"]

ASSIGNEE_KINDS = ("user", "position", "department_head", "manager_of_requester", "expression")


class Assignee(_Model):
    """Who decides a level: a login, a position, a department's head, the requester's manager N up, or a template."""

    user: str | None = Field(None, description="a login of the directory")
    position: str | None = Field(None, description="a position of the directory, e.g. finance_director")
    department_head: str | None = Field(None, description="a department code, or a template giving one")
    manager_of_requester: int | None = Field(None, ge=1, le=10, description="1: the manager, 2: theirs, …")
    expression: str | None = Field(None, description="template giving a login or a list of logins")

    @model_validator(mode="after")
    def _exactly_one(self) -> Assignee:
        given = [k for k in ASSIGNEE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(ASSIGNEE_KINDS)}; got {given or 'none'}")
        return self


def _approval_mode(value: object) -> str | int:
    if value in ("any", "all") or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100):
        return value  # checked just above
    raise ValueError("expected any, all, or a number of approvals from 1 to 100")


ApprovalMode = Annotated[
    str | int,
    BeforeValidator(_approval_mode),
    WithJsonSchema({"oneOf": [{"enum": ["any", "all"]}, {"type": "integer", "minimum": 1, "maximum": 100}]}),
]


class ApprovalLevel(_Model):
    """One level of an approval chain: its assignees, how many must approve, and when it applies."""

    name: str | None = Field(None, max_length=200)
    assignees: list[Assignee] = Field(min_length=1)
    mode: ApprovalMode = Field("any", description="any: one approval; all: every assignee; N: N approvals")
    when: str | None = Field(None, description="template; the level applies only if it is true")


NoticeKind = Literal["created", "reminded", "escalated", "returned", "completed"]
NOTICE_KINDS: tuple[NoticeKind, ...] = ("created", "reminded", "escalated", "returned", "completed")


class ApprovalNotify(_Model):
    """Who is told what, and through which connection (sent after the commit, retried, never blocking)."""

    connection: str = Field(
        description="an `email` connection (the users' e-mail), a `dingtalk`/`wecom`/`feishu` group robot, or a"
        " `dingtalk_app`/`wecom_app`/`feishu_app` connection (to each person by platform user id = login)"
    )
    on: list[NoticeKind] = Field(
        default_factory=lambda: list(NOTICE_KINDS),
        description="created/reminded/escalated: the approver, with a decision link; returned/completed: the requester",
    )


class ApprovalSpec(_Model):
    """Levels of people deciding in turn; the run waits durably, without a worker, for the outcome."""

    requester: str = Field(description="template giving the requester's login")
    subject: str | None = Field(None, description="template: what is decided, e.g. 采购申请 {{ event.body.no }}")
    levels: list[ApprovalLevel] = Field(min_length=1)
    form: dict[str, Any] | None = Field(None, description="JSON Schema of the data an approver may fill")
    due: Duration | None = Field(None, description="each task is due this long after it is created")
    remind_after: Duration | None = Field(None, description="remind the assignees once after this long")
    escalate: Literal["manager", "approve", "reject"] | None = Field(None, description="what happens when due")
    allow_self_approval: bool = False
    notify: ApprovalNotify | None = Field(None, description="notifications by e-mail or IM, in zh-CN")

    @field_validator("form")
    @classmethod
    def _json_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        import jsonschema  # type: ignore[import-untyped]  # only where a flow has a form

        if value is not None:
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"expected a JSON Schema; {exc.message}") from None
        return value

    @model_validator(mode="after")
    def _timers(self) -> ApprovalSpec:
        if self.escalate is not None and self.due is None:
            raise ValueError("escalate needs due: the time after which a task escalates")
        if self.remind_after is not None and self.due is not None and self.remind_after >= self.due:
            raise ValueError("remind_after must be shorter than due")
        return self
