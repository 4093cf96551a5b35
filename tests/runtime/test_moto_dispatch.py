"""moto's server lists its service folders once (tsunagu_local.moto_dispatch)."""

from __future__ import annotations

from moto import backends

from tsunagu_local.moto_dispatch import dispatch_without_rereading


def test_the_service_folders_are_listed_once_and_are_what_moto_lists() -> None:
    on_disk = list(backends.list_of_moto_modules())
    dispatch_without_rereading()

    listed = backends.list_of_moto_modules()
    assert listed is backends.list_of_moto_modules()  # not listed again
    assert list(listed) == on_disk
    assert {"dynamodb", "stepfunctions", "ses", "sesv2"} <= set(listed)
