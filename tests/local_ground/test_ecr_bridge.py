"""EcrRegistryBridge: the local registry as ECR's data plane for moto, pushed to with real buildah."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.registry import LocalRegistry
from pipeline.errors import PushError
from pipeline.images import buildah

V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def bridge(_moto_for_registry_tests: str) -> Iterator[EcrRegistryBridge]:
    with LocalRegistry() as registry, EcrRegistryBridge(registry) as bridge:
        yield bridge


@pytest.fixture
def repository(ecr: Any) -> str:
    name = f"models/{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    return name


def _login(ecr: Any) -> tuple[str, str, str]:
    """What the pipeline does: host, user and password from get_authorization_token."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return data["proxyEndpoint"].split("://", 1)[1], user, password


def _push(ecr: Any, image: str, repository: str, tag: str, **options: Any) -> str:
    host, user, password = _login(ecr)
    return buildah.push(image, f"{host}/{repository}:{tag}", user, password, tls_verify=False, **options)


def _registry_digest(registry: LocalRegistry, repository: str, reference: str) -> str:
    """Ask the registry itself (not the front) which digest a tag points at."""
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={"Authorization": f"Basic {token}", "Accept": f"{V2S2}, {OCI}"},
    )
    with _NO_PROXY.open(request, timeout=5) as response:
        return str(response.headers["Docker-Content-Digest"])


# --- AuthorizationTokenLogsIn ---------------------------------------------------------------------


def test_authorization_token_logs_in_to_the_bridge(ecr: Any, bridge: EcrRegistryBridge) -> None:
    data = ecr.get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == bridge.url
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS" and password != bridge.password  # the registry's own login is never handed out
    assert data["expiresAt"] > datetime.now(UTC)
    request = urllib.request.Request(
        f"{bridge.url}/v2/", headers={"Authorization": f"Basic {data['authorizationToken']}"}
    )
    with _NO_PROXY.open(request, timeout=5) as response:
        assert response.status == 200


def test_without_a_login_the_registry_answers_401(bridge: EcrRegistryBridge) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _NO_PROXY.open(f"{bridge.url}/v2/", timeout=5)
    assert refused.value.code == 401


# --- AuthorizationTokenExpires -----------------------------------------------------------------------


def _ping(bridge: EcrRegistryBridge, token: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{bridge.url}/v2/", headers={"Authorization": f"Basic {token}"})
    try:
        with _NO_PROXY.open(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_an_authorization_token_expires_after_12_hours_and_is_refused_as_ecr_refuses_it(
    ecr: Any, bridge: EcrRegistryBridge
) -> None:
    now = [1000.0]
    bridge.clock = lambda: now[0]
    data = ecr.get_authorization_token()["authorizationData"][0]
    lifetime = (data["expiresAt"] - datetime.now(UTC)).total_seconds()
    assert 12 * 3600 - 60 < lifetime <= 12 * 3600  # this bridge runs unscaled: AWS's own 12 hours
    now[0] += 12 * 3600 - 1
    assert _ping(bridge, data["authorizationToken"])[0] == 200
    now[0] += 1
    status, body = _ping(bridge, data["authorizationToken"])
    assert status == 403
    assert json.loads(body) == {
        "errors": [
            {
                "code": "DENIED",
                "message": "Your authorization token has expired. Reauthenticate and try again.",
                "detail": None,
            }
        ]
    }
    fresh = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert _ping(bridge, fresh)[0] == 200  # a fresh token logs in again


def test_a_token_lasts_12_hours_of_the_grounds_scaled_time(ecr: Any, bridge: EcrRegistryBridge) -> None:
    from local_ground.moto_extensions.timescale import set_time_scale

    now = [0.0]
    bridge.clock = lambda: now[0]
    set_time_scale(0.02)
    try:
        data = ecr.get_authorization_token()["authorizationData"][0]
    finally:
        set_time_scale(1.0)
    assert (data["expiresAt"] - datetime.now(UTC)).total_seconds() <= 12 * 3600 * 0.02
    now[0] = 12 * 3600 * 0.02
    assert _ping(bridge, data["authorizationToken"])[0] == 403


def test_an_expired_token_fails_a_push_with_the_fresh_login_hint(
    ecr: Any, bridge: EcrRegistryBridge, repository: str, healthy_image: Any
) -> None:
    now = [0.0]
    bridge.clock = lambda: now[0]
    host, user, password = _login(ecr)
    now[0] += 12 * 3600
    with pytest.raises(PushError, match="registry refused the credentials") as refused:
        buildah.push(
            healthy_image.tag, f"{host}/{repository}:1.0.0", user, password, tls_verify=False, retry_delay_s=0.1
        )
    assert "ECR tokens last 12 hours" in (refused.value.hint or "")
    assert ecr.describe_images(repositoryName=repository)["imageDetails"] == []


def test_the_pipelines_push_logs_in_afresh_so_an_old_token_never_matters(
    ecr: Any, bridge: EcrRegistryBridge, repository: str, healthy_image: Any
) -> None:
    from pipeline.aws import ecr as ecr_api
    from pipeline.steps.build import BuildahBuilder
    from pipeline.steps.push import push_image

    now = [0.0]
    bridge.clock = lambda: now[0]
    earlier = ecr_api.login(ecr)  # e.g. the login of a job that started 12 hours ago
    now[0] += 12 * 3600
    lines: list[str] = []
    pushed = push_image(ecr, BuildahBuilder(), healthy_image.tag, repository, "1.0.0", lines.append)
    assert pushed.digest == ecr.describe_images(repositoryName=repository)["imageDetails"][0]["imageDigest"]
    stale = base64.b64encode(f"{earlier.username}:{earlier.password}".encode()).decode()
    assert _ping(bridge, stale)[0] == 403  # the earlier token had expired: the push used its own


def test_the_registrys_own_password_does_not_log_in_to_ecr(bridge: EcrRegistryBridge) -> None:
    own = base64.b64encode(f"{bridge.username}:{bridge.password}".encode()).decode()
    assert _ping(bridge, own)[0] == 401


def test_uninstall_gives_moto_its_own_token_back(ecr: Any, _moto_for_registry_tests: str) -> None:
    with LocalRegistry() as registry, EcrRegistryBridge(registry) as bridge:
        assert ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"] == bridge.url
    endpoint = ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
    assert endpoint == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"


# --- PushedImageAppearsInEcr -----------------------------------------------------------------------


def test_pushed_image_appears_in_ecr_with_the_registry_digest(
    ecr: Any, bridge: EcrRegistryBridge, repository: str, healthy_image: Any
) -> None:
    digest = _push(ecr, healthy_image.tag, repository, "v1.0.0")

    assert digest == _registry_digest(bridge.registry, repository, "v1.0.0")
    [detail] = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["v1.0.0"]
    assert detail["imageManifestMediaType"] == V2S2
    [image] = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "v1.0.0"}])["images"]
    assert image["imageId"] == {"imageDigest": digest, "imageTag": "v1.0.0"}
    manifest = image["imageManifest"].encode()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digest
    assert json.loads(manifest)["mediaType"] == V2S2
    found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    assert [i["imageId"]["imageDigest"] for i in found["images"]] == [digest]
    assert ecr.list_images(repositoryName=repository)["imageIds"] == [{"imageDigest": digest, "imageTag": "v1.0.0"}]


def test_an_oci_push_keeps_its_media_type_and_digest(
    ecr: Any, bridge: EcrRegistryBridge, repository: str, healthy_image: Any
) -> None:
    digest = _push(ecr, healthy_image.tag, repository, "oci", manifest_format="oci")
    [detail] = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert (detail["imageDigest"], detail["imageManifestMediaType"]) == (digest, OCI)
    assert digest == _registry_digest(bridge.registry, repository, "oci")


def test_a_push_with_wrong_credentials_fails_clearly(
    bridge: EcrRegistryBridge, repository: str, healthy_image: Any, ecr: Any
) -> None:
    with pytest.raises(PushError, match="registry refused the credentials") as refused:
        buildah.push(healthy_image.tag, f"{bridge.host}/{repository}:v1", "AWS", "wrong", tls_verify=False)
    assert refused.value.hint and "login" in refused.value.hint
    assert ecr.describe_images(repositoryName=repository)["imageDetails"] == []


# --- PushToMissingRepositoryRefused ----------------------------------------------------------------


def test_a_push_to_a_repository_ecr_does_not_have_is_refused(
    ecr: Any, bridge: EcrRegistryBridge, healthy_image: Any
) -> None:
    with pytest.raises(PushError, match="does not exist"):
        _push(ecr, healthy_image.tag, "no-such-repository", "v1")


# --- ImmutableTagRefusesPush -----------------------------------------------------------------------


def test_an_immutable_tag_refuses_a_second_push_and_nothing_moves(
    ecr: Any, bridge: EcrRegistryBridge, repository: str, healthy_image: Any, unhealthy_image: Any
) -> None:
    first = _push(ecr, healthy_image.tag, repository, "v1")
    for image in (unhealthy_image, healthy_image):  # another image, and the same one again
        with pytest.raises(PushError, match="immutable") as refused:
            _push(ecr, image.tag, repository, "v1")
        assert refused.value.hint and "new version tag" in refused.value.hint
    details = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in details] == [(first, ["v1"])]
    assert _registry_digest(bridge.registry, repository, "v1") == first


def test_a_mutable_tag_moves_and_a_same_image_push_is_a_no_op(
    ecr: Any, bridge: EcrRegistryBridge, healthy_image: Any, unhealthy_image: Any
) -> None:
    repository = f"models/{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=repository, imageTagMutability="MUTABLE")
    first = _push(ecr, healthy_image.tag, repository, "latest")
    assert _push(ecr, healthy_image.tag, repository, "latest") == first
    second = _push(ecr, unhealthy_image.tag, repository, "latest")
    tagged = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "latest"}])
    assert [d["imageDigest"] for d in tagged["imageDetails"]] == [second]
    assert _registry_digest(bridge.registry, repository, "latest") == second
    # MovedTagLeavesOldImageUntagged: the old image is still there, by digest, without tags.
    untagged = ecr.list_images(repositoryName=repository, filter={"tagStatus": "UNTAGGED"})
    assert untagged["imageIds"] == [{"imageDigest": first}]


def test_the_bridge_plugs_into_local_aws_as_an_extension(healthy_image: Any) -> None:
    import boto3

    from local_ground.aws import LocalAWS
    from local_ground.moto_extensions import all_extensions

    with LocalRegistry() as registry:
        bridge = EcrRegistryBridge(registry)
        with LocalAWS(extensions=[*all_extensions(), bridge]) as aws:
            env = aws.environ()
            ecr = boto3.client(
                "ecr",
                endpoint_url=aws.endpoint_url,
                region_name=aws.region,
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            )
            ecr.create_repository(repositoryName="app", imageTagMutability="IMMUTABLE")
            digest = _push(ecr, healthy_image.tag, "app", "v2.0.0")
            [detail] = ecr.describe_images(repositoryName="app")["imageDetails"]
            assert detail["imageDigest"] == digest
        assert not bridge.installed


# --- no spelling slips past ECR's rules ------------------------------------------------------------


def _manifest_put(bridge: EcrRegistryBridge, path: str, authorization: str, manifest: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{bridge.url}{path}",
        data=manifest,
        method="PUT",
        headers={"Authorization": authorization, "Content-Type": V2S2},
    )
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_each_bypass_of_tag_immutability_is_refused(
    ecr: Any, bridge: EcrRegistryBridge, repository: str, healthy_image: Any
) -> None:
    first = _push(ecr, healthy_image.tag, repository, "1.0.0")
    registry = bridge.registry
    own = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    original = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/1.0.0", headers={"Authorization": f"Basic {own}", "Accept": V2S2}
    )
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    with _NO_PROXY.open(original, timeout=5) as response:
        manifest = json.dumps(json.loads(response.read()), indent=1).encode()  # same blobs, another digest

    attempts = {
        "lowercase scheme": (f"/v2/{repository}/manifests/1.0.0", f"basic {token}", 400),
        "uppercase scheme": (f"/v2/{repository}/manifests/1.0.0", f"BASIC {token}", 400),
        "encoded tag": (f"/v2/{repository}/manifests/1%2E0%2E0", f"Basic {token}", 400),
        "encoded path": (f"/v2/{repository.replace('/', '%2F')}/manifests/1.0.0", f"Basic {token}", 400),
        "odd spacing": (f"/v2/{repository}/manifests/1.0.0", f"Basic  {token}", 401),
    }
    for name, (path, authorization, status) in attempts.items():
        got, body = _manifest_put(bridge, path, authorization, manifest)
        assert got == status, (name, got, body)
        assert ("TAG_INVALID" if status == 400 else "UNAUTHORIZED") in body, (name, body)

    details = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in details] == [(first, ["1.0.0"])]
    assert _registry_digest(registry, repository, "1.0.0") == first  # the registry's tag never moved


def test_a_lowercase_scheme_is_a_login_as_the_registry_sees_it(ecr: Any, bridge: EcrRegistryBridge) -> None:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert bridge.is_logged_in(f"basic {token}") and bridge.is_logged_in(f"BaSiC {token}")
    assert not bridge.is_logged_in(f"Basic {token}=") and not bridge.is_logged_in(f"Bearer {token}")
    assert not bridge.is_logged_in(None)
