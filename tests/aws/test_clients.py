from __future__ import annotations

import pytest

from pipeline.aws import clients
from pipeline.aws.clients import Clients


def test_each_clients_resolves_credentials_anew_but_reads_service_models_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first-secret")
    first = Clients("eu-west-1")
    first_cloudformation = first.cloudformation  # the client is made now, with the credentials of now
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECOND")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "second-secret")
    second = Clients("us-east-1")
    # Credentials follow the environment of the moment: a shared session would keep the first ones.
    assert first_cloudformation._request_signer._credentials.access_key == "AKIAFIRST"
    assert second.cloudformation._request_signer._credentials.access_key == "AKIASECOND"
    assert second.cloudformation.meta.region_name == "us-east-1"
    # The service model was read once: both sessions use the one loader, with no path added twice.
    loaders = {id(c._session._session.get_component("data_loader")) for c in (first, second)}
    assert loaders == {id(clients._shared_loader)}
    paths = clients._shared_loader.search_paths
    assert len(paths) == len(set(paths))
