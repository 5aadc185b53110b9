"""The request pipeline's decisions, driven by hand: no HTTP, no event loop, no sleeping.

This is why the pipeline is written as flows (:mod:`airflow_provider_carol.hooks.core.transport`): a test
plays the driver, answers each action the flow yields, and reads every decision it took (retry or not,
how long to wait, when to re-authenticate) from the actions themselves. The same flows run under both
hooks, over real HTTP, in the other hook tests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator

import pytest
from airflow.providers.common.compat.sdk import Connection

from airflow_provider_carol.exceptions import CarolApiError, CarolAuthError, CarolConnectionError
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.auth import Token
from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
from airflow_provider_carol.hooks.core.retry import RetryPolicy
from airflow_provider_carol.hooks.core.transport import Action, Authenticate, Call, Pipeline, Send, Sleep
from airflow_provider_carol.hooks.core.wire import HttpResponse, TransportFailure

TOKEN, RENEWED = Token("access-1"), Token("access-2")


def pipeline(auth_type: str = "password", retry_limit: int = 3) -> Pipeline:
    extra = {"auth_type": auth_type, "tenant": "t1", "connector_id": "c1"}
    conn = Connection(
        conn_id="c", conn_type="carol", login="u@x.com", password="s3cret-value", extra=json.dumps(extra)
    )
    config = CarolConnectionConfig.from_connection(conn)
    policy = RetryPolicy(retry_limit=retry_limit, retry_delay=0.5, max_retry_wait=20.0)
    return Pipeline(config, policy, logging.getLogger("test_flows"))


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> HttpResponse:
    content = b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, headers or {}, content, "https://t1.carol.ai/api/v1/x")


class Server:
    """Plays the driver's side: the token for :class:`Authenticate` (a new one once rejected), None for
    :class:`Sleep`, the scripted ``sends`` in order; every action the flow yielded is kept in ``actions``."""

    def __init__(self, *sends: HttpResponse | TransportFailure) -> None:
        self.sends = list(sends)
        self.actions: list[Action] = []

    def reply(self, action: Action) -> object:
        self.actions.append(action)
        if isinstance(action, Authenticate):
            return RENEWED if action.rejected else TOKEN
        if isinstance(action, Sleep):
            return None
        assert isinstance(action, Send), action
        return self.sends.pop(0)

    def run(self, flow: Generator[Action, object, object]) -> object:
        """Drive ``flow`` to its end: each action gets its reply (a failure is thrown in); its result."""
        action = next(flow)
        while True:
            result = self.reply(action)
            try:
                action = flow.throw(result) if isinstance(result, BaseException) else flow.send(result)
            except StopIteration as stop:
                return stop.value

    @property
    def kinds(self) -> list[str]:
        return [type(a).__name__ for a in self.actions]


def test_an_idempotent_get_is_retried_after_a_5xx_with_a_backoff_then_returns_the_answer():
    carol = Server(answer(503), answer(200, {"ok": 1}))
    assert carol.run(pipeline().call(Call("v1/x"))) == {"ok": 1}
    assert carol.kinds == ["Authenticate", "Send", "Sleep", "Send"]
    sleep = carol.actions[2]
    assert isinstance(sleep, Sleep) and 0 <= sleep.seconds <= 0.5  # full jitter, first attempt
    sent = [a.request for a in carol.actions if isinstance(a, Send)]
    assert sent[0] == sent[1] and sent[0].headers["Authorization"] == "access-1"


def test_a_post_that_may_have_reached_carol_is_never_resent():
    carol = Server(answer(502), answer(200, {}))
    with pytest.raises(CarolApiError) as raised:
        carol.run(pipeline().call(Call("v1/x", json={"a": 1})))
    assert raised.value.status_code == 502
    assert carol.kinds == ["Authenticate", "Send"]


def test_a_post_carol_said_it_did_not_process_is_resent_after_its_retry_after():
    carol = Server(answer(429, headers={"Retry-After": "7"}), answer(200, {"ok": 2}))
    assert carol.run(pipeline().call(Call("v1/x", json={"a": 1}))) == {"ok": 2}
    assert carol.kinds == ["Authenticate", "Send", "Sleep", "Send"]
    assert carol.actions[2] == Sleep(7.0)


def test_retry_after_is_capped_by_max_retry_wait():
    carol = Server(answer(503, headers={"Retry-After": "3600"}), answer(200, {}))
    carol.run(pipeline().call(Call("v1/x")))
    assert carol.actions[2] == Sleep(20.0)


def test_a_post_that_was_never_sent_is_resent_but_one_that_may_have_arrived_is_not():
    carol = Server(TransportFailure("connection refused", unsent=True, certificate=False), answer(200, {}))
    carol.run(pipeline().call(Call("v1/x", json={})))
    assert carol.kinds == ["Authenticate", "Send", "Sleep", "Send"]
    carol = Server(TransportFailure("read timed out", unsent=False, certificate=False), answer(200, {}))
    with pytest.raises(CarolConnectionError):
        carol.run(pipeline().call(Call("v1/x", json={})))
    assert carol.kinds == ["Authenticate", "Send"]


def test_a_certificate_failure_is_never_retried_even_for_a_get():
    carol = Server(TransportFailure("certificate verify failed", unsent=True, certificate=True))
    with pytest.raises(CarolConnectionError):
        carol.run(pipeline().call(Call("v1/x")))
    assert carol.kinds == ["Authenticate", "Send"]


def test_retries_stop_at_retry_limit_and_the_last_answer_is_the_error():
    carol = Server(answer(500), answer(500), answer(500), answer(200, {}))
    with pytest.raises(CarolApiError) as raised:
        carol.run(pipeline(retry_limit=2).call(Call("v1/x")))
    assert raised.value.status_code == 500
    assert carol.kinds == ["Authenticate", "Send", "Sleep", "Send", "Sleep", "Send"]


def test_a_401_renews_the_token_once_and_resends_with_the_new_one():
    carol = Server(answer(401), answer(200, {"ok": 3}))
    assert carol.run(pipeline().call(Call("v1/x"))) == {"ok": 3}
    assert carol.kinds == ["Authenticate", "Send", "Authenticate", "Send"]
    renewal, resent = carol.actions[2], carol.actions[3]
    assert isinstance(renewal, Authenticate) and renewal.rejected and renewal.stale == TOKEN
    assert isinstance(resent, Send) and resent.request.headers["Authorization"] == "access-2"


def test_a_second_401_is_an_auth_error_not_a_loop():
    carol = Server(answer(401), answer(401), answer(200, {}))
    with pytest.raises(CarolAuthError):
        carol.run(pipeline().call(Call("v1/x")))
    assert carol.kinds == ["Authenticate", "Send", "Authenticate", "Send"]


def test_an_api_key_401_is_not_retried_with_a_new_token():
    carol = Server(answer(401), answer(200, {}))
    with pytest.raises(CarolAuthError):
        carol.run(pipeline("api_key").call(Call("v1/x")))
    assert carol.kinds == ["Authenticate", "Send"]
    sent = carol.actions[1]
    assert isinstance(sent, Send) and sent.request.headers["x-auth-key"] == "s3cret-value"


def test_an_intake_post_is_resent_on_the_statuses_pycarol_resends_it_on():
    intake = Call.to(
        endpoints.STAGING_INTAKE,
        path_params={"staging": "s"},
        data=b"[]",
        retry_statuses=frozenset({409}),
        idempotent=True,
    )
    carol = Server(answer(409), answer(200, {}))
    carol.run(pipeline().call(intake))
    assert carol.kinds == ["Authenticate", "Send", "Sleep", "Send"]
    first, second = (a.request for a in carol.actions if isinstance(a, Send))
    assert first.url == second.url and first.body == second.body
