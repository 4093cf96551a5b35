"""moto's server reads its service folders and a handler's method names once
(tsunagu_local.moto_dispatch)."""

from __future__ import annotations

from moto import backends
from moto.core import responses
from moto.core.utils import method_names_from_class as read_method_names
from moto.dynamodb.responses import DynamoHandler

from tsunagu_local.moto_dispatch import dispatch_without_rereading


def test_the_folders_and_method_names_are_read_once_and_are_what_moto_reads() -> None:
    on_disk = list(backends.list_of_moto_modules())
    dispatch_without_rereading()

    listed = backends.list_of_moto_modules()
    assert listed is backends.list_of_moto_modules()  # not listed again
    assert list(listed) == on_disk
    assert {"dynamodb", "stepfunctions", "ses", "sesv2"} <= set(listed)

    method_names = getattr(responses, "method_names_from_class")  # noqa: B009
    names = method_names(DynamoHandler)
    assert names is method_names(DynamoHandler)
    assert names == set(read_method_names(DynamoHandler))
    assert {"put_item", "transact_write_items", "query"} <= names
