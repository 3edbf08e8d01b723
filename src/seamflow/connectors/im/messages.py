"""The inputs of the IM robot actions: a text message, a markdown message and a card, with mentions.

The three platforms share these models; each platform turns them into its documented request
body and refuses, as a Permanent error, a mention kind it cannot deliver.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from seamflow.connectors.base import Action

__all__ = ["Button", "CardInput", "MarkdownInput", "Mentions", "TextInput", "robot_actions"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Mentions(BaseModel):
    """Whom the message mentions (@). Which kinds a platform supports is in docs/howto/connectors/im.md."""

    model_config = _STRICT
    mobiles: list[str] = Field(default_factory=list)
    """Mobile numbers of the people to mention (DingTalk, WeCom)."""
    user_ids: list[str] = Field(default_factory=list)
    """Platform user ids to mention: DingTalk userId, WeCom userid, Feishu open_id."""
    at_all: bool = False
    """Mention everyone in the group."""

    @property
    def is_empty(self) -> bool:
        """True if nobody is mentioned."""
        return not (self.mobiles or self.user_ids or self.at_all)


class TextInput(Mentions):
    """A plain-text message."""

    content: str = Field(min_length=1)
    """The text; a DingTalk robot with keywords needs one of them in it."""


class MarkdownInput(Mentions):
    """A markdown message: `title` is the notification preview (WeCom shows it as a heading)."""

    title: str = Field(min_length=1)
    text: str = Field(min_length=1)


class Button(BaseModel):
    """A card button that opens a link."""

    model_config = _STRICT
    title: str = Field(min_length=1)
    url: str = Field(min_length=1)


class CardInput(BaseModel):
    """A card: a title, a markdown body and buttons that open links."""

    model_config = _STRICT
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)
    buttons: list[Button] = Field(default_factory=list)


def robot_actions(platform: str, *, has_card: bool) -> dict[str, Action]:
    """Return the platform's actions; none is idempotent (the robot APIs take no idempotency key)."""
    actions = {
        "text": Action("text", TextInput, f"post a text message to the {platform} group"),
        "markdown": Action("markdown", MarkdownInput, f"post a markdown message to the {platform} group"),
    }
    if has_card:
        actions["card"] = Action("card", CardInput, f"post a card with link buttons to the {platform} group")
    return actions
