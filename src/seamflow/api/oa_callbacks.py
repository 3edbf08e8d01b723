"""The `oa` trigger: DingTalk, WeCom and Feishu approval callbacks at `/hooks/<path>`.

`oa.verify_callback` checks the request (signature, freshness, replay, decryption) and the
store claims its nonce for the whole cluster (`store.NonceStore`); a
URL-verification handshake is answered at once; an event is accepted like a webhook's and
only then acknowledged in the platform's format (DingTalk: an encrypted "success"). A
platform's retry of the same event finds its dedupe key and starts no second run.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from seamflow import clock, engine, errors, flows, oa
from seamflow.api.problems import problem
from seamflow.flows import CompiledFlow

__all__ = ["OaCallbacks"]

_SETTINGS = ("token", "aes_key", "receiver_id")


class OaCallbacks:
    """Handles `oa` triggers for one app: the nonces seen and each flow version's compiled settings."""

    def __init__(self) -> None:
        self.replays = oa.Replays()
        self._templates: dict[tuple[str, str], dict[str, flows.Template]] = {}

    async def handle(
        self, request: Request, raw: bytes, eng: engine.Engine, flow: CompiledFlow, context: Mapping[str, object]
    ) -> Response:
        """Verify one callback for `flow` and accept its event.

        Raises:
            errors.SeamflowError: refused (nothing stored) or not accepted (e.g. overloaded).
        """
        trigger = flow.spec.trigger.oa
        assert trigger is not None
        if request.method == "GET" and trigger.platform != "wecom":
            return problem(
                405, "http.405", f"{trigger.platform} callbacks are POSTed; only WeCom verifies its URL with GET"
            )
        rendered = self._render(flow, context)
        settings = oa.CallbackSettings(
            platform=trigger.platform,
            token=rendered["token"] or "",
            aes_key=rendered["aes_key"] or "",
            receiver_id=rendered["receiver_id"] or "",
            max_age=trigger.max_age,
        )
        parts = oa.CallbackRequest(request.method, dict(request.query_params), dict(request.headers), raw)
        now = clock.now()
        verified = oa.verify_callback(settings, parts, now, self.replays)
        if verified.replay_key is not None and not await eng.db.claim_nonce(
            verified.replay_key, now, now + trigger.max_age
        ):  # seen by another process of the cluster (this process's own memory caught it above)
            raise errors.Conflict(
                "callback refused: this nonce and timestamp were already delivered;"
                " a platform's retry carries new ones",
                code="oa.replayed",
            )
        if verified.event is not None:
            body = verified.event.as_body()
            # the flow's own dedupe_key (compiled with the flow) is rendered by the inbox
            key = None if trigger.dedupe_key else f"{trigger.platform}:{verified.event.event_id}"
            await eng.accept(flow, engine.Event("oa", body, dedupe_key=key))
        if verified.replay_key is not None:
            self.replays.remember(verified.replay_key, now + trigger.max_age)
        return Response(verified.answer.body, 200, media_type=verified.answer.media_type)

    def _render(self, flow: CompiledFlow, context: Mapping[str, object]) -> dict[str, str | None]:
        trigger = flow.spec.trigger.oa
        assert trigger is not None
        compiled = self._templates.get((flow.id, flow.version))
        if compiled is None:
            compiled = {
                name: flows.Template.compile(value, where=f"trigger.oa.{name}")
                for name in _SETTINGS
                if (value := getattr(trigger, name)) is not None
            }
            self._templates[(flow.id, flow.version)] = compiled
        out: dict[str, str | None] = dict.fromkeys(_SETTINGS)
        for name, template in compiled.items():
            value = template.render(context)
            out[name] = None if value in (None, "") else str(value)
        return out
