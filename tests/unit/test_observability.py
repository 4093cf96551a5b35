"""What a traced handler puts into X-Ray: timing and annotations, never its answer or the
exception object (answers carry leads' personal data)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tsunagu import observability

LEAD = "owned@example.jp"


class Subsegment:
    def __init__(self) -> None:
        self.metadata: dict[str, Any] = {}
        self.annotations: dict[str, Any] = {}

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        self.metadata[key] = value

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class Provider:
    """X-Ray's recorder as Powertools' Tracer calls it, keeping what it was given."""

    def __init__(self) -> None:
        self.subsegments: list[Subsegment] = []

    @contextmanager
    def in_subsegment(self, name: str, **_: Any) -> Iterator[Subsegment]:
        self.subsegments.append(Subsegment())
        yield self.subsegments[-1]


class Context:
    function_name = "tsunagu-test-admin-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:x"
    aws_request_id = "req-1"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Provider:
    # As deployed: the template sets no POWERTOOLS_TRACER_CAPTURE_* (Powertools' default: on)
    monkeypatch.delenv("POWERTOOLS_TRACER_CAPTURE_RESPONSE", raising=False)
    monkeypatch.delenv("POWERTOOLS_TRACER_CAPTURE_ERROR", raising=False)
    provider = Provider()
    monkeypatch.setattr(observability.tracer(), "provider", provider)
    return provider


def test_a_handler_s_answer_is_not_put_into_the_trace(recorder: Provider) -> None:
    @observability.observed()
    def handler(event: dict[str, Any], context: Any) -> Any:
        return {"statusCode": 200, "body": f'{{"email": "{LEAD}"}}'}

    assert LEAD in handler({}, Context())["body"]

    [subsegment] = recorder.subsegments
    assert subsegment.metadata == {}
    assert "ColdStart" in subsegment.annotations  # traced all the same


def test_a_handler_s_exception_object_is_not_put_into_the_trace(recorder: Provider) -> None:
    @observability.observed()
    def handler(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError(f"could not store {LEAD}")

    with pytest.raises(RuntimeError):
        handler({}, Context())

    [subsegment] = recorder.subsegments
    assert subsegment.metadata == {}
