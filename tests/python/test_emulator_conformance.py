"""Conformance: requests built and signed by the OFFICIAL SDKs (pinned in
requirements.txt) are accepted by the emulator and its answers parse into
the SDKs' typed responses; tampered or wrongly signed requests come back as
the SDKs' typed exceptions with the clouds' codes."""

import datetime

import pytest
from conftest import (
    ALI_AK,
    ALI_SK,
    ALI_USER,
    DCS_ID,
    DRS_JOB,
    DRS_PAUSED_JOB,
    DTS_JOB,
    HW_AK,
    HW_DOMAIN_ID,
    HW_SK,
    HW_TMP_AK,
    HW_TMP_SK,
    HW_TOKEN,
    HW_USER_ID,
    PROJECT,
    STS_AK,
    STS_SK,
    STS_TOKEN,
)

# --- Alibaba, tea SDKs (ACS3-HMAC-SHA256) -----------------------------------

from alibabacloud_dts20200101 import models as dts_models
from alibabacloud_dts20200101.client import Client as DtsClient
from alibabacloud_polardb20170801 import models as polar_models
from alibabacloud_polardb20170801.client import Client as PolarClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi import exceptions as tea_exceptions
from alibabacloud_tea_openapi.utils_models import Config as TeaConfig

# DRS v3 methods warn that they are deprecated; v3 is still the only API.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CLUSTER = "pc-bp1234567890abcde"


def tea_config(emu, ak=ALI_AK, sk=ALI_SK, token=None):
    return TeaConfig(
        access_key_id=ak,
        access_key_secret=sk,
        security_token=token,
        endpoint=emu.host,
        protocol="http",
        region_id="cn-hangzhou",
    )


def tea_error(call):
    """Runs a tea call that must fail and returns its typed exception."""
    with pytest.raises(tea_exceptions.AlibabaCloudException) as raised:
        call()
    return raised.value


def test_polardb_modify_password_and_read_back(emu):
    client = PolarClient(tea_config(emu))
    response = client.modify_account_password(
        polar_models.ModifyAccountPasswordRequest(
            dbcluster_id=CLUSTER, account_name="testacc", new_account_password="Pw!@#$%^&*()_+-=1a"
        )
    )
    assert response.status_code == 200
    assert isinstance(response.body, polar_models.ModifyAccountPasswordResponseBody)
    assert response.body.request_id
    truth = emu.admin("GET", f"polardb/{CLUSTER}/accounts/testacc")
    assert truth["password"] == "Pw!@#$%^&*()_+-=1a"
    assert truth["changes"] == 1

    accounts = client.describe_accounts(
        polar_models.DescribeAccountsRequest(dbcluster_id=CLUSTER)
    ).body.accounts
    assert [(a.account_name, a.account_status, a.account_type) for a in accounts] == [
        ("testacc", "Available", "Normal")
    ]
    regions = client.describe_regions(polar_models.DescribeRegionsRequest()).body
    assert regions.regions.region[0].region_id == "cn-hangzhou"


def test_polardb_account_description_and_paged_accounts(emu):
    client = PolarClient(tea_config(emu))
    marker = "orders team vault-cloudrotate:0123456789abcdef:00000000000000aa"
    response = client.modify_account_description(
        polar_models.ModifyAccountDescriptionRequest(
            dbcluster_id=CLUSTER, account_name="testacc", account_description=marker
        )
    )
    assert response.status_code == 200 and response.body.request_id
    page = client.describe_accounts(
        polar_models.DescribeAccountsRequest(dbcluster_id=CLUSTER, page_size=100, page_number=1)
    ).body
    assert (page.page_number, page.page_record_count) == (1, 1)
    assert page.accounts[0].account_description == marker
    for bad in ("x", "https://wiki/db"):
        error = tea_error(
            lambda: client.modify_account_description(
                polar_models.ModifyAccountDescriptionRequest(
                    dbcluster_id=CLUSTER, account_name="testacc", account_description=bad
                )
            )
        )
        assert error.code == "InvalidAccountDescription.Malformed"


def test_polardb_rules_come_back_as_typed_errors(emu):
    client = PolarClient(tea_config(emu))

    def modify(cluster, account, password):
        return lambda: client.modify_account_password(
            polar_models.ModifyAccountPasswordRequest(
                dbcluster_id=cluster, account_name=account, new_account_password=password
            )
        )

    error = tea_error(modify(CLUSTER, "testacc", "alllowercase1"))
    assert isinstance(error, tea_exceptions.ClientException)
    assert (error.status_code, error.code) == (400, "InvalidAccountPassword.Malformed")
    assert tea_error(modify("pc-nope", "testacc", "Passw0rd!")).code == "InvalidDBClusterId.NotFound"
    assert tea_error(modify(CLUSTER, "nobody", "Passw0rd!")).code == "InvalidAccountName.NotFound"
    assert emu.admin("GET", f"polardb/{CLUSTER}/accounts/testacc")["changes"] == 0


def test_dts_change_same_password_and_job_state(emu):
    client = DtsClient(tea_config(emu))

    def modify(job, password, endpoint="src", user="dtstest"):
        return client.modify_dts_job_password(
            dts_models.ModifyDtsJobPasswordRequest(
                dts_job_id=job, endpoint=endpoint, user_name=user, password=password, region_id="cn-hangzhou"
            )
        )

    body = modify(DTS_JOB, "N3w P@ss*~/+=&!").body
    assert body.success is True and body.http_status_code == 200
    truth = emu.admin("GET", f"dts/{DTS_JOB}")
    assert truth["src"]["password"] == "N3w P@ss*~/+=&!"
    assert truth["src"]["changes"] == 1 and truth["dest"]["changes"] == 0

    same = tea_error(lambda: modify(DTS_JOB, "N3w P@ss*~/+=&!"))
    assert (same.status_code, same.code) == (400, "InvalidParameter")
    assert same.data["Success"] is False
    assert (same.data["ErrCode"], same.data["DynamicMessage"]) == ("InvalidParameter", "Password")
    assert same.data["ErrMessage"] == "The Value of Input Parameter %s is not valid."

    denied = tea_error(lambda: modify("dtsmodifying01", "Another-Passw0rd"))
    assert (denied.status_code, denied.code) == (403, "OperationDenied.JobStatus")
    wrong_user = tea_error(lambda: modify(DTS_JOB, "Another-Passw0rd", user="someone"))
    assert (wrong_user.code, wrong_user.data["DynamicMessage"]) == ("InvalidParameter", "UserName")
    missing = tea_error(lambda: modify("nojob", "Another-Passw0rd"))
    assert (missing.status_code, missing.code) == (404, "Forbidden.InstanceNotFound")
    assert emu.admin("GET", f"dts/{DTS_JOB}")["changes"] == 1

    detail = client.describe_dts_job_detail(
        dts_models.DescribeDtsJobDetailRequest(dts_job_id=DTS_JOB, region_id="cn-hangzhou")
    ).body
    assert detail.status == "Synchronizing"
    assert detail.source_endpoint.user_name == "dtstest"
    assert detail.destination_endpoint.user_name == "dtsdest"
    jobs = client.describe_dts_jobs(
        dts_models.DescribeDtsJobsRequest(region_id="cn-hangzhou", page_size=1, page_number=1)
    ).body
    assert jobs.total_record_count == 2 and len(jobs.dts_job_list) == 1


def test_sts_credentials_need_their_token(emu):
    with_token = PolarClient(tea_config(emu, STS_AK, STS_SK, STS_TOKEN))
    assert with_token.describe_regions(polar_models.DescribeRegionsRequest()).status_code == 200
    without = PolarClient(tea_config(emu, STS_AK, STS_SK))
    error = tea_error(lambda: without.describe_regions(polar_models.DescribeRegionsRequest()))
    assert error.code == "InvalidSecurityToken.Malformed"
    wrong = PolarClient(tea_config(emu, STS_AK, STS_SK, "CAIS-forged"))
    error = tea_error(lambda: wrong.describe_regions(polar_models.DescribeRegionsRequest()))
    assert error.code == "InvalidSecurityToken.Malformed"


def test_wrong_secret_and_unknown_key(emu):
    bad_secret = PolarClient(tea_config(emu, sk="not-the-secret"))
    error = tea_error(lambda: bad_secret.describe_regions(polar_models.DescribeRegionsRequest()))
    assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")
    unknown = PolarClient(tea_config(emu, ak="LTAI-unknown"))
    error = tea_error(lambda: unknown.describe_regions(polar_models.DescribeRegionsRequest()))
    assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")
    assert emu.counters()["outcomes"]["auth_failed"] == 2


def tamper_tea(monkeypatch, mutate):
    """Lets tea sign the request, then changes it before it is sent."""
    from darabonba.core import DaraCore

    original = DaraCore.do_action

    def tampered(request, runtime=None):
        mutate(request)
        return original(request, runtime)

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(tampered))


def test_tampered_acs3_request_is_rejected(emu, monkeypatch):
    def change_password(request):
        request.query["NewAccountPassword"] = "Pw!@#$%^&*()_+-=1b"  # one byte changed

    tamper_tea(monkeypatch, change_password)
    client = PolarClient(tea_config(emu))
    error = tea_error(
        lambda: client.modify_account_password(
            polar_models.ModifyAccountPasswordRequest(
                dbcluster_id=CLUSTER, account_name="testacc", new_account_password="Pw!@#$%^&*()_+-=1a"
            )
        )
    )
    assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")
    assert emu.admin("GET", f"polardb/{CLUSTER}/accounts/testacc")["changes"] == 0


def test_unsigned_acs_header_is_rejected(emu, monkeypatch):
    tamper_tea(monkeypatch, lambda request: request.headers.update({"x-acs-extra": "1"}))
    client = PolarClient(tea_config(emu))
    error = tea_error(lambda: client.describe_regions(polar_models.DescribeRegionsRequest()))
    assert error.code == "IncompleteSignature"


def test_replayed_nonce_is_rejected(emu, monkeypatch):
    from alibabacloud_tea_openapi.utils import Utils

    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "0123456789abcdef0123456789abcdef"))
    client = PolarClient(tea_config(emu))
    assert client.describe_regions(polar_models.DescribeRegionsRequest()).status_code == 200
    error = tea_error(lambda: client.describe_regions(polar_models.DescribeRegionsRequest()))
    assert (error.status_code, error.code) == (400, "SignatureNonceUsed")


def test_skewed_clock_is_rejected(emu, monkeypatch):
    from alibabacloud_tea_openapi.utils import Utils

    skewed = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: skewed.strftime("%Y-%m-%dT%H:%M:%SZ")))
    client = PolarClient(tea_config(emu))
    error = tea_error(lambda: client.describe_regions(polar_models.DescribeRegionsRequest()))
    assert (error.status_code, error.code) == (400, "InvalidTimeStamp.Expired")


def test_throttling_carries_retry_after(emu):
    emu.set_faults({"seed": 1, "throttle_rate": 1.0, "apis": ["polardb.DescribeRegions"]})
    client = PolarClient(tea_config(emu))
    error = tea_error(lambda: client.describe_regions(polar_models.DescribeRegionsRequest()))
    assert isinstance(error, tea_exceptions.ThrottlingException)
    assert error.code == "Throttling.User"
    assert error.retry_after == 1000
    assert emu.counters()["outcomes"]["throttled"] == 1


def test_ram_access_keys_lifecycle(emu):
    client = RamClient(tea_config(emu))
    listed = client.list_access_keys(ram_models.ListAccessKeysRequest(user_name=ALI_USER)).body
    assert {k.access_key_id for k in listed.access_keys.access_key} == {ALI_AK, STS_AK}
    limit = tea_error(lambda: client.create_access_key(ram_models.CreateAccessKeyRequest(user_name=ALI_USER)))
    assert (limit.status_code, limit.code) == (409, "LimitExceeded.User.AccessKey")

    client.delete_access_key(ram_models.DeleteAccessKeyRequest(user_name=ALI_USER, user_access_key_id=STS_AK))
    created = client.create_access_key(ram_models.CreateAccessKeyRequest(user_name=ALI_USER)).body.access_key
    assert created.status == "Active" and created.access_key_id.startswith("LTAI")
    fresh = PolarClient(tea_config(emu, created.access_key_id, created.access_key_secret))
    assert fresh.describe_regions(polar_models.DescribeRegionsRequest()).status_code == 200

    client.delete_access_key(
        ram_models.DeleteAccessKeyRequest(user_name=ALI_USER, user_access_key_id=created.access_key_id)
    )
    error = tea_error(lambda: fresh.describe_regions(polar_models.DescribeRegionsRequest()))
    assert error.code == "InvalidAccessKeyId.NotFound"
    gone = tea_error(
        lambda: client.delete_access_key(
            ram_models.DeleteAccessKeyRequest(user_name=ALI_USER, user_access_key_id=created.access_key_id)
        )
    )
    assert (gone.status_code, gone.code) == (404, "EntityNotExist.User.AccessKey")
    nobody = tea_error(lambda: client.list_access_keys(ram_models.ListAccessKeysRequest(user_name="nobody")))
    assert nobody.code == "EntityNotExist.User"


# --- Alibaba, aliyunsdkcore (RPC V2, HMAC-SHA1) -------------------------------

from aliyunsdkcore.acs_exception.exceptions import ServerException as V2ServerException
from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest


def v2_client(ak=ALI_AK, sk=ALI_SK, token=None):
    credential = StsTokenCredential(ak, sk, token) if token else AccessKeyCredential(ak, sk)
    return AcsClient(credential=credential, region_id="cn-hangzhou", auto_retry=False)


def v2_request(emu, version, action, **params):
    request = CommonRequest(domain=emu.host, version=version, action_name=action)
    request.set_protocol_type("http")
    request.set_method("POST")
    request.set_accept_format("JSON")
    for name, value in params.items():
        request.add_query_param(name, value)
    return request


def v2_error(call):
    with pytest.raises(V2ServerException) as raised:
        call()
    return raised.value


def test_v2_dts_change_and_same_password(emu):
    import json

    client = v2_client()
    params = dict(DtsJobId=DTS_JOB, Endpoint="dest", UserName="dtsdest", Password="N3w P@ss*~/+=&!", RegionId="cn-hangzhou")
    body = json.loads(client.do_action_with_exception(v2_request(emu, "2020-01-01", "ModifyDtsJobPassword", **params)))
    assert body["Success"] is True
    assert emu.admin("GET", f"dts/{DTS_JOB}")["dest"]["password"] == "N3w P@ss*~/+=&!"
    error = v2_error(lambda: client.do_action_with_exception(v2_request(emu, "2020-01-01", "ModifyDtsJobPassword", **params)))
    assert (error.get_http_status(), error.get_error_code()) == (400, "InvalidParameter")


def test_v2_wrong_secret_matches_the_sdk_string_to_sign(emu):
    # aliyunsdkcore compares the server's echoed string-to-sign with its own
    # and, when equal, reports InvalidAccessKeySecret: proof that the
    # emulator canonicalises byte for byte like the SDK.
    # (CommonRequest does not keep the string-to-sign; a product-style
    # RpcRequest does, as the generated aliyunsdk* product packages use.)
    from aliyunsdkcore.request import RpcRequest

    client = v2_client(sk="not-the-secret")
    request = RpcRequest("polardb", "2017-08-01", "ModifyAccountPassword")
    request.set_endpoint(emu.host)
    request.set_protocol_type("http")
    request.set_method("POST")
    request.set_accept_format("JSON")
    for name, value in dict(DBClusterId="pc-bp1234567890abcde", AccountName="testacc",
                            NewAccountPassword="Pw!@#$%^&*()_+-=1a").items():
        request.add_query_param(name, value)
    error = v2_error(lambda: client.do_action_with_exception(request))
    assert error.get_http_status() == 400
    assert error.get_error_code() == "InvalidAccessKeySecret"


def test_v2_sts_and_unknown_key(emu):
    import json

    client = v2_client(STS_AK, STS_SK, STS_TOKEN)
    body = json.loads(client.do_action_with_exception(v2_request(emu, "2015-05-01", "ListAccessKeys", UserName=ALI_USER)))
    assert len(body["AccessKeys"]["AccessKey"]) == 2
    error = v2_error(lambda: v2_client("LTAI-unknown", "x").do_action_with_exception(
        v2_request(emu, "2015-05-01", "ListAccessKeys", UserName=ALI_USER)))
    assert (error.get_http_status(), error.get_error_code()) == (404, "InvalidAccessKeyId.NotFound")


def test_v2_reused_nonce_and_skew(emu, monkeypatch):
    from aliyunsdkcore.utils import parameter_helper

    monkeypatch.setattr(parameter_helper, "get_uuid", lambda: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf")
    client = v2_client()
    client.do_action_with_exception(v2_request(emu, "2017-08-01", "DescribeRegions"))
    error = v2_error(lambda: client.do_action_with_exception(v2_request(emu, "2017-08-01", "DescribeRegions")))
    assert error.get_error_code() == "SignatureNonceUsed"

    monkeypatch.setattr(parameter_helper, "get_uuid", lambda: "another-nonce")
    monkeypatch.setattr(parameter_helper, "get_iso_8061_date", lambda: "2020-01-01T00:00:00Z")
    error = v2_error(lambda: client.do_action_with_exception(v2_request(emu, "2017-08-01", "DescribeRegions")))
    assert error.get_error_code() == "InvalidTimeStamp.Expired"


# --- Huawei, huaweicloudsdk (SDK-HMAC-SHA256) ---------------------------------

from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.exceptions import exceptions as hw_exceptions
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkdcs.v2 import DcsClient
from huaweicloudsdkdcs.v2 import model as dcs_models
from huaweicloudsdkdrs.v3 import DrsClient
from huaweicloudsdkdrs.v3 import model as drs_models
from huaweicloudsdkdrs.v5 import DrsClient as DrsV5Client
from huaweicloudsdkdrs.v5 import model as drs5_models
from huaweicloudsdkiam.v3 import IamClient
from huaweicloudsdkiam.v3 import model as iam_models


def hw_client(emu, cls, ak=HW_AK, sk=HW_SK, token=None, global_service=False):
    credentials = GlobalCredentials(ak, sk, HW_DOMAIN_ID) if global_service else BasicCredentials(ak, sk, PROJECT)
    if token:
        credentials = credentials.with_security_token(token)
    config = HttpConfig.get_default_config()
    config.retry_times = 1
    return (
        cls.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([emu.url])
        .build()
    )


def hw_error(call):
    with pytest.raises(hw_exceptions.ClientRequestException) as raised:
        call()
    return raised.value


def drs_reset(client, *items):
    jobs = [drs_models.ModifyPwdEndPoint(db_password=pw, end_point_type=ep, job_id=job) for job, ep, pw in items]
    return client.batch_reset_password(
        drs_models.BatchResetPasswordRequest(body=drs_models.BatchModifyPwdReq(jobs=jobs))
    )


def test_drs_batch_change_with_per_item_results(emu):
    client = hw_client(emu, DrsClient)
    response = drs_reset(
        client,
        (DRS_JOB, "so", "N3w-P@ss!"),
        (DRS_PAUSED_JOB, "ta", "N3w-P@ss!"),
        ("no-such-job", "so", "N3w-P@ss!"),
    )
    assert response.status_code == 200 and response.count == 3
    by_id = {r.id: r for r in response.results}
    assert by_id[DRS_JOB].status == "success" and by_id[DRS_JOB].end_point_type == "so"
    assert (by_id[DRS_PAUSED_JOB].status, by_id[DRS_PAUSED_JOB].error_code) == ("failed", "DRS.M00304")
    assert by_id["no-such-job"].error_code == "DRS.10000010"
    truth = emu.admin("GET", f"drs/{DRS_JOB}")
    assert truth["so"]["password"] == "N3w-P@ss!" and truth["changes"] == 1
    assert emu.admin("GET", f"drs/{DRS_PAUSED_JOB}")["changes"] == 0

    status = client.batch_list_job_status(
        drs_models.BatchListJobStatusRequest(body=drs_models.BatchQueryJobReq(jobs=[DRS_JOB]))
    )
    assert status.results[0].status == "INCRE_TRANSFER_STARTED"

    empty = hw_error(lambda: drs_reset(client))
    assert (empty.status_code, empty.error_code) == (400, "DRS.M00201")

    jobs = hw_client(emu, DrsV5Client).list_jobs(drs5_models.ListJobsRequest(job_type="migration", limit=1, offset=0))
    assert jobs.total_count == 2 and len(jobs.jobs) == 1


def test_dcs_change_lock_and_reset(emu):
    client = hw_client(emu, DcsClient)

    def update(old, new):
        return client.update_password(
            dcs_models.UpdatePasswordRequest(
                instance_id=DCS_ID, body=dcs_models.ModifyInstancePasswordBody(old_password=old, new_password=new)
            )
        )

    ok = update("Old-P@ss1", "New-P@ss2")
    assert (ok.result, ok.retry_times_left) == ("success", "5")
    for left in ("4", "3", "2", "1"):
        failed = update("Wrong-P@ss1", "New-P@ss3")
        assert (failed.result, failed.retry_times_left) == ("passwordFailed", left)
    locked = update("Wrong-P@ss1", "New-P@ss3")
    assert (locked.result, locked.lock_time_left) == ("locked", "5")
    assert update("New-P@ss2", "New-P@ss3").result == "locked"

    reset = client.reset_password(
        dcs_models.ResetPasswordRequest(
            instance_id=DCS_ID, body=dcs_models.ResetInstancePasswordBody(new_password="Reset-P@ss4", no_password_access=False)
        )
    )
    assert (reset.code, reset.message) == ("3", "instance is locked")
    emu.admin("PUT", "clock", {"advance_seconds": 301})
    reset = client.reset_password(
        dcs_models.ResetPasswordRequest(
            instance_id=DCS_ID, body=dcs_models.ResetInstancePasswordBody(new_password="Reset-P@ss4", no_password_access=False)
        )
    )
    assert (reset.code, reset.message) == ("1", "success")
    truth = emu.admin("GET", f"dcs/{DCS_ID}")
    assert (truth["password"], truth["changes"]) == ("Reset-P@ss4", 2)

    invalid = hw_error(lambda: update("Reset-P@ss4", "short"))
    assert (invalid.status_code, invalid.error_code) == (400, "DCS.4019")
    missing = hw_error(lambda: client.show_instance(dcs_models.ShowInstanceRequest(instance_id="nope")))
    assert (missing.status_code, missing.error_code) == (400, "DCS.3022")

    shown = client.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID))
    assert (shown.status, shown.no_password_access) == ("RUNNING", "false")
    listed = client.list_instances(dcs_models.ListInstancesRequest(limit=1))
    assert listed.instance_num == 1 and listed.instances[0].instance_id == DCS_ID

    emu.admin("PATCH", f"dcs/{DCS_ID}", {"status": "RESTARTING"})
    stopped = hw_error(lambda: update("Reset-P@ss4", "Other-P@ss5"))
    assert stopped.error_code == "DCS.4049"
    assert emu.admin("GET", f"dcs/{DCS_ID}")["wrong_old_passwords"] == 5


def test_dcs_instance_description(emu):
    client = hw_client(emu, DcsClient)
    marker = "cache vault-cloudrotate:0123456789abcdef:00000000000000aa"
    updated = client.update_instance(
        dcs_models.UpdateInstanceRequest(instance_id=DCS_ID, body=dcs_models.ModifyInstanceBody(description=marker))
    )
    assert updated.status_code == 204
    assert client.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)).description == marker
    listed = client.list_instances(dcs_models.ListInstancesRequest(offset=0, limit=1000))
    assert [(i.instance_id, i.description) for i in listed.instances] == [(DCS_ID, marker)]


def test_iam_permanent_access_keys(emu):
    client = hw_client(emu, IamClient, global_service=True)
    listed = client.list_permanent_access_keys(iam_models.ListPermanentAccessKeysRequest(user_id=HW_USER_ID))
    assert {c.access for c in listed.credentials} == {HW_AK, HW_TMP_AK}

    def create():
        return client.create_permanent_access_key(
            iam_models.CreatePermanentAccessKeyRequest(
                body=iam_models.CreatePermanentAccessKeyRequestBody(
                    credential=iam_models.CreateCredentialOption(user_id=HW_USER_ID, description="rotated")
                )
            )
        )

    # IAM's documented key-limit answer has no code: the SDK reports the status.
    limit = hw_error(create)
    assert (limit.status_code, limit.error_code) == (400, "400")
    assert "akSkNumExceed" in limit.error_msg
    client.delete_permanent_access_key(iam_models.DeletePermanentAccessKeyRequest(access_key=HW_TMP_AK))
    created = create()
    assert created.status_code == 201
    assert created.credential.status == "active" and len(created.credential.secret) == 40

    fresh = hw_client(emu, IamClient, created.credential.access, created.credential.secret, global_service=True)
    assert fresh.list_permanent_access_keys(iam_models.ListPermanentAccessKeysRequest(user_id=HW_USER_ID)).credentials
    client.delete_permanent_access_key(iam_models.DeletePermanentAccessKeyRequest(access_key=created.credential.access))
    denied = hw_error(lambda: fresh.list_permanent_access_keys(iam_models.ListPermanentAccessKeysRequest(user_id=HW_USER_ID)))
    assert (denied.status_code, denied.error_code) == (401, "APIGW.0301")
    gone = hw_error(lambda: client.delete_permanent_access_key(
        iam_models.DeletePermanentAccessKeyRequest(access_key=created.credential.access)))
    assert (gone.status_code, gone.error_code) == (404, "IAM.0004")


def test_huawei_temporary_credentials_need_their_token(emu):
    with_token = hw_client(emu, DcsClient, HW_TMP_AK, HW_TMP_SK, HW_TOKEN)
    assert with_token.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)).status == "RUNNING"
    without = hw_client(emu, DcsClient, HW_TMP_AK, HW_TMP_SK)
    error = hw_error(lambda: without.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")


def test_huawei_tampered_body_and_lock_after_five_failures(emu, monkeypatch):
    from huaweicloudsdkcore.http.http_client import HttpClient

    original = HttpClient.do_request_sync

    def tampered(self, request):
        request.body = request.body.replace(b"N3w-P@ss!", b"N3w-P@ss?")  # one byte, after signing
        return original(self, request)

    monkeypatch.setattr(HttpClient, "do_request_sync", tampered)
    client = hw_client(emu, DrsClient)
    error = hw_error(lambda: drs_reset(client, (DRS_JOB, "so", "N3w-P@ss!")))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")
    assert error.request_id
    monkeypatch.setattr(HttpClient, "do_request_sync", original)
    assert emu.admin("GET", f"drs/{DRS_JOB}")["changes"] == 0

    bad = hw_client(emu, DrsClient, sk="wrong-secret")
    for _ in range(4):  # five failures in all, with the tampered one
        hw_error(lambda: drs_reset(bad, (DRS_JOB, "so", "N3w-P@ss!")))
    locked = hw_error(lambda: drs_reset(client, (DRS_JOB, "so", "N3w-P@ss!")))
    assert (locked.status_code, locked.error_code) == (401, "APIGW.0301")
    assert "locked" in locked.error_msg
    assert emu.counters()["outcomes"]["locked"] == 1
    emu.admin("PUT", "clock", {"advance_seconds": 301})
    assert drs_reset(client, (DRS_JOB, "so", "N3w-P@ss!")).results[0].status == "success"


def test_huawei_sdk_retries_a_throttled_call(emu):
    emu.set_faults({"scripted": [{"api": "dcs.ShowInstance", "code": "APIGW.0308", "count": 1}]})
    client = hw_client(emu, DcsClient)
    assert client.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)).status == "RUNNING"
    counters = emu.counters()
    assert counters["calls"]["dcs.ShowInstance"] == 2
    assert counters["outcomes"]["scripted"] == 1


# --- More authentication failures, through the SDKs ----------------------------

def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def test_huawei_skewed_clock_and_unknown_key(emu):
    client = hw_client(emu, DcsClient)
    skewed = utc_now() - datetime.timedelta(minutes=16)
    client.preset_headers = {"X-Sdk-Date": skewed.strftime("%Y%m%dT%H%M%SZ")}
    error = hw_error(lambda: client.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")
    assert "signature expired" in error.error_msg and error.request_id
    inside = utc_now() - datetime.timedelta(minutes=14)
    client.preset_headers = {"X-Sdk-Date": inside.strftime("%Y%m%dT%H%M%SZ")}
    assert client.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)).status == "RUNNING"

    unknown = hw_client(emu, DcsClient, ak="UNKNOWNACCESSKEY0000", sk="whatever")
    error = hw_error(lambda: unknown.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")


def test_temporary_credentials_stop_at_their_expiry(emu):
    soon = utc_now() + datetime.timedelta(minutes=10)
    emu.seed({
        "alicloud": {"users": [{"name": ALI_USER, "access_keys": [
            {"id": STS_AK, "secret": STS_SK, "security_token": STS_TOKEN,
             "expiration": soon.strftime("%Y-%m-%dT%H:%M:%SZ")}]}]},
        "huaweicloud": {"users": [{"id": HW_USER_ID, "access_keys": [
            {"access": HW_TMP_AK, "secret": HW_TMP_SK, "security_token": HW_TOKEN,
             "expires_at": soon.strftime("%Y-%m-%dT%H:%M:%S.000000Z")}]}]},
    })
    polar = PolarClient(tea_config(emu, STS_AK, STS_SK, STS_TOKEN))
    dcs = hw_client(emu, DcsClient, HW_TMP_AK, HW_TMP_SK, HW_TOKEN)
    assert polar.describe_regions(polar_models.DescribeRegionsRequest()).status_code == 200
    assert dcs.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)).status == "RUNNING"
    emu.admin("PUT", "clock", {"advance_seconds": 11 * 60})
    # The SDKs sign with their own clock; keep it inside the emulator's window.
    dcs.preset_headers = {"X-Sdk-Date": (utc_now() + datetime.timedelta(minutes=11)).strftime("%Y%m%dT%H%M%SZ")}
    error = hw_error(lambda: dcs.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID)))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")
    assert "token expires" in error.error_msg
    error = tea_error(lambda: polar.describe_regions(polar_models.DescribeRegionsRequest()))
    assert (error.status_code, error.code) == (400, "InvalidSecurityToken.Expired")


def test_v2_tampered_query_is_rejected(emu, monkeypatch):
    from aliyunsdkcore.vendored import requests  # aliyunsdkcore sends with its own copy

    original = requests.Session.send

    def tampered(self, prepared, **kwargs):
        prepared.url = prepared.url.replace("Tampered-Passw0rd1", "Tampered-Passw0rd2")
        return original(self, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", tampered)
    request = v2_request(emu, "2017-08-01", "ModifyAccountPassword", DBClusterId="pc-bp1234567890abcde",
                         AccountName="testacc", NewAccountPassword="Tampered-Passw0rd1")
    error = v2_error(lambda: v2_client().do_action_with_exception(request))
    assert (error.get_http_status(), error.get_error_code()) == (400, "SignatureDoesNotMatch")
    assert emu.admin("GET", "polardb/pc-bp1234567890abcde/accounts/testacc")["changes"] == 0


# --- Faults, as the SDKs see them ---------------------------------------------

def test_server_errors_parse_as_the_sdks_server_exceptions(emu):
    emu.set_faults({"seed": 4, "server_error_rate": 1.0})
    polar = PolarClient(tea_config(emu))
    error = tea_error(lambda: polar.describe_regions(polar_models.DescribeRegionsRequest()))
    assert isinstance(error, tea_exceptions.ServerException)
    assert (error.status_code, error.code) in {(500, "InternalError"), (503, "ServiceUnavailable")}
    assert error.request_id
    dcs = hw_client(emu, DcsClient)
    with pytest.raises(hw_exceptions.ServerResponseException) as raised:
        dcs.show_instance(dcs_models.ShowInstanceRequest(instance_id=DCS_ID))
    assert raised.value.status_code in (502, 504) and raised.value.error_code == "APIGW.0201"
    assert raised.value.request_id
    assert emu.counters()["outcomes"]["server_error"] == 2


def test_per_key_rate_limit_is_the_sdks_throttling(emu):
    emu.set_faults({"rate_limit_per_key": {"requests_per_second": 0.2, "burst": 1}})
    polar = PolarClient(tea_config(emu))
    assert polar.describe_regions(polar_models.DescribeRegionsRequest()).status_code == 200
    error = tea_error(lambda: polar.describe_regions(polar_models.DescribeRegionsRequest()))
    assert isinstance(error, tea_exceptions.ThrottlingException)
    assert error.code == "Throttling.User" and 4000 <= error.retry_after <= 5000
    # Another key has its own bucket.
    sts = PolarClient(tea_config(emu, STS_AK, STS_SK, STS_TOKEN))
    assert sts.describe_regions(polar_models.DescribeRegionsRequest()).status_code == 200
    assert emu.counters()["outcomes"]["rate_limited"] == 1


def test_connection_reset_reaches_the_sdks_as_a_connection_error(emu):
    from darabonba.exceptions import UnretryableException

    emu.set_faults({"seed": 2, "reset_rate": 1.0})
    dts = DtsClient(tea_config(emu))
    with pytest.raises(UnretryableException) as raised:
        dts.modify_dts_job_password(dts_models.ModifyDtsJobPasswordRequest(
            dts_job_id=DTS_JOB, endpoint="src", user_name="dtstest", password="Reset-Passw0rd", region_id="cn-hangzhou"))
    assert "Connection reset by peer" in str(raised.value)
    dcs = hw_client(emu, DcsClient)
    with pytest.raises(hw_exceptions.ConnectionException):
        dcs.reset_password(dcs_models.ResetPasswordRequest(
            instance_id=DCS_ID, body=dcs_models.ResetInstancePasswordBody(new_password="Reset-P@ss9", no_password_access=False)))
    assert emu.admin("GET", f"dts/{DTS_JOB}")["changes"] == 0
    assert emu.admin("GET", f"dcs/{DCS_ID}")["changes"] == 0


def test_apply_then_drop_is_a_timeout_after_the_change(emu):
    import requests
    from darabonba.exceptions import UnretryableException
    from darabonba.runtime import RuntimeOptions

    emu.set_faults({"seed": 2, "drop_after_apply_rate": 1.0, "drop_after_apply_hold_ms": 3000})
    dts = DtsClient(tea_config(emu))
    with pytest.raises(UnretryableException) as raised:
        dts.modify_dts_job_password_with_options(
            dts_models.ModifyDtsJobPasswordRequest(dts_job_id=DTS_JOB, endpoint="src", user_name="dtstest",
                                                   password="Dropped-Passw0rd", region_id="cn-hangzhou"),
            RuntimeOptions(read_timeout=500))
    assert "Read timed out" in str(raised.value)
    assert emu.admin("GET", f"dts/{DTS_JOB}")["src"]["password"] == "Dropped-Passw0rd"

    config = HttpConfig.get_default_config()
    config.retry_times = 1
    config.timeout = (2, 0.5)
    dcs = (DcsClient.new_builder().with_http_config(config)
           .with_credentials(BasicCredentials(HW_AK, HW_SK, PROJECT)).with_endpoints([emu.url]).build())
    with pytest.raises(requests.exceptions.Timeout):
        dcs.reset_password(dcs_models.ResetPasswordRequest(
            instance_id=DCS_ID, body=dcs_models.ResetInstancePasswordBody(new_password="Dropped-P@ss1", no_password_access=False)))
    truth = emu.admin("GET", f"dcs/{DCS_ID}")
    assert (truth["password"], truth["changes"]) == ("Dropped-P@ss1", 1)
    assert emu.counters()["outcomes"]["dropped_after_apply"] == 2


# --- Paging, scope and failures as the services define them -------------------

def test_drs_batch_status_pages_like_the_service(emu):
    client = hw_client(emu, DrsClient)
    ids = [DRS_JOB] + [f"no-such-job-{n}" for n in range(6)]

    def status(page_req=None):
        body = drs_models.BatchQueryJobReqPage(jobs=ids, page_req=page_req)
        return client.batch_list_job_status(drs_models.BatchListJobStatusRequest(body=body))

    first = status()
    assert first.count == 5 and [r.id for r in first.results] == ids[:5]
    second = status(drs_models.PageReq(cur_page=2, per_page=5))
    assert [r.id for r in second.results] == ids[5:]
    everything = status(drs_models.PageReq(cur_page=1, per_page=100))
    assert len(everything.results) == 7
    found, missing = everything.results[0], everything.results[1]
    assert (found.status, found.error_code) == ("INCRE_TRANSFER_STARTED", None)
    assert (missing.status, missing.error_code) == (None, "DRS.10000010")
    too_big = hw_error(lambda: status(drs_models.PageReq(cur_page=1, per_page=101)))
    assert (too_big.status_code, too_big.error_code) == (400, "DRS.M00211")

    emu.admin("PATCH", f"drs/{DRS_JOB}", {"status": "INCRE_TRANSFER_FAILED"})
    failed = status(drs_models.PageReq(cur_page=1, per_page=1)).results[0]
    assert failed.status == "INCRE_TRANSFER_FAILED"
    assert failed.error_code.startswith("DRS.") and failed.error_message


def test_iam_accepts_either_scope_header_the_sdk_sends(emu):
    request = iam_models.ListPermanentAccessKeysRequest(user_id=HW_USER_ID)
    by_domain = hw_client(emu, IamClient, global_service=True).list_permanent_access_keys(request)
    by_project = hw_client(emu, IamClient).list_permanent_access_keys(request)
    assert {c.access for c in by_domain.credentials} == {c.access for c in by_project.credentials}


def test_a_change_answered_with_a_gateway_error_after_it_applied(emu):
    emu.set_faults({"seed": 2, "gateway_error_after_apply_rate": 1.0, "apis": ["dcs.UpdatePassword"]})
    client = hw_client(emu, DcsClient)
    with pytest.raises(hw_exceptions.ServerResponseException) as raised:
        client.update_password(
            dcs_models.UpdatePasswordRequest(
                instance_id=DCS_ID,
                body=dcs_models.ModifyInstancePasswordBody(old_password="Old-P@ss1", new_password="New-P@ss2"),
            )
        )
    assert raised.value.status_code in (502, 504) and raised.value.error_code == "APIGW.0201"
    assert emu.admin("GET", f"dcs/{DCS_ID}")["password"] == "New-P@ss2"
    assert emu.counters()["outcomes"]["gateway_error_after_apply"] == 1


# --- Account lifecycles: PolarDB accounts and DCS ACL accounts ---------------


def test_polardb_account_lifecycle_with_the_sdk(emu):
    emu.seed({"alicloud": {"polardb_clusters": [{"id": CLUSTER, "databases": ["db1", "db2"],
                                                 "account_settle_seconds": 5}]}})
    client = PolarClient(tea_config(emu))
    created = client.create_account(
        polar_models.CreateAccountRequest(
            dbcluster_id=CLUSTER, account_name="app_blue", account_password="Blue-Passw0rd",
            account_type="Normal", dbname="db1,db2", account_privilege="ReadWrite,ReadOnly",
            client_token="conformance-token-1",
        )
    )
    assert created.status_code == 200 and created.body.request_id
    account = client.describe_accounts(
        polar_models.DescribeAccountsRequest(dbcluster_id=CLUSTER, account_name="app_blue")
    ).body.accounts[0]
    assert (account.account_status, account.account_type) == ("Creating", "Normal")
    assert [(p.dbname, p.account_privilege) for p in account.database_privileges] == [
        ("db1", "ReadWrite"), ("db2", "ReadOnly")]

    duplicate = tea_error(lambda: client.create_account(polar_models.CreateAccountRequest(
        dbcluster_id=CLUSTER, account_name="app_blue", account_password="Blue-Passw0rd")))
    assert (duplicate.status_code, duplicate.code) == (400, "InvalidAccountName.Duplicate")
    malformed = tea_error(lambda: client.create_account(polar_models.CreateAccountRequest(
        dbcluster_id=CLUSTER, account_name="Root", account_password="Blue-Passw0rd")))
    assert (malformed.status_code, malformed.code) == (400, "InvalidAccountName.Malformed")

    emu.admin("PUT", "clock", {"advance_seconds": 6})
    granted = client.grant_account_privilege(polar_models.GrantAccountPrivilegeRequest(
        dbcluster_id=CLUSTER, account_name="app_blue", dbname="db2", account_privilege="DMLOnly"))
    assert granted.status_code == 200
    revoked = client.revoke_account_privilege(polar_models.RevokeAccountPrivilegeRequest(
        dbcluster_id=CLUSTER, account_name="app_blue", dbname="db1"))
    assert revoked.status_code == 200
    account = client.describe_accounts(
        polar_models.DescribeAccountsRequest(dbcluster_id=CLUSTER, account_name="app_blue")
    ).body.accounts[0]
    assert account.account_status == "Available"
    assert [(p.dbname, p.account_privilege) for p in account.database_privileges] == [("db2", "DMLOnly")]

    deleted = client.delete_account(polar_models.DeleteAccountRequest(dbcluster_id=CLUSTER, account_name="app_blue"))
    assert deleted.status_code == 200
    emu.admin("PUT", "clock", {"advance_seconds": 6})
    gone = tea_error(lambda: client.delete_account(
        polar_models.DeleteAccountRequest(dbcluster_id=CLUSTER, account_name="app_blue")))
    assert (gone.status_code, gone.code) == (404, "InvalidAccountName.NotFound")


def test_dcs_acl_accounts_with_the_sdk(emu):
    client = hw_client(emu, DcsClient)
    created = client.create_acl_account(dcs_models.CreateAclAccountRequest(
        instance_id=DCS_ID,
        body=dcs_models.CreateAclAccountRequestBody(
            account_name="reader", account_role="read", account_password="Acl-P@ssw1", description="conformance"),
    ))
    assert created.status_code == 200

    def accounts():
        return {a.account_name: a for a in client.list_acl_accounts(
            dcs_models.ListAclAccountsRequest(instance_id=DCS_ID)).accounts}

    listed = accounts()
    assert (listed["default"].account_type, listed["default"].status) == ("default", "AVAILABLE")
    reader = listed["reader"]
    assert (reader.account_type, reader.account_role, reader.status) == ("normal", "read", "CREATING")
    busy = hw_error(lambda: client.update_acl_account(dcs_models.UpdateAclAccountRequest(
        instance_id=DCS_ID, account_id=reader.account_id,
        body=dcs_models.AclAccountRoleModifyBody(account_role="write"))))
    assert (busy.status_code, busy.error_code) == (400, "DCS.4026")
    emu.admin("PUT", "clock", {"advance_seconds": 2})

    def modify(old, new):
        return client.update_acl_account_pass_word(dcs_models.UpdateAclAccountPassWordRequest(
            instance_id=DCS_ID, account_id=reader.account_id,
            body=dcs_models.AclAccountModifyPasswordBody(old_password=old, new_password=new)))

    failed = modify("Wrong-P@ss1", "Acl-P@ssw2")
    assert (failed.result, failed.retry_times_left) == ("passwordFailed", "4")
    ok = modify("Acl-P@ssw1", "Acl-P@ssw2")
    assert (ok.result, ok.retry_times_left) == ("success", "5")
    colon = hw_error(lambda: modify("Acl-P@ssw2", "Bad:P@ssw0rd"))
    assert (colon.status_code, colon.error_code) == (400, "DCS.4019")

    reset = client.reset_acl_account_pass_word(dcs_models.ResetAclAccountPassWordRequest(
        instance_id=DCS_ID, account_id=reader.account_id,
        body=dcs_models.AclAccountResetPasswordBody(new_password="Acl-P@ssw3")))
    assert (reset.code, reset.message) == ("1", "success")
    assert emu.admin("GET", f"dcs/{DCS_ID}/accounts/reader")["password"] == "Acl-P@ssw3"
    emu.admin("PUT", "clock", {"advance_seconds": 2})
    role = client.update_acl_account(dcs_models.UpdateAclAccountRequest(
        instance_id=DCS_ID, account_id=reader.account_id,
        body=dcs_models.AclAccountRoleModifyBody(account_role="write")))
    assert role.instance_id == DCS_ID and role.job_id
    emu.admin("PUT", "clock", {"advance_seconds": 2})
    deleted = client.delete_acl_account(dcs_models.DeleteAclAccountRequest(
        instance_id=DCS_ID, account_id=reader.account_id))
    assert deleted.status_code == 200
    assert accounts()["reader"].status == "DELETING"
    emu.admin("PUT", "clock", {"advance_seconds": 2})
    assert "reader" not in accounts()
    missing = hw_error(lambda: client.delete_acl_account(dcs_models.DeleteAclAccountRequest(
        instance_id=DCS_ID, account_id=reader.account_id)))
    assert (missing.status_code, missing.error_code) == (400, "DCS.4961")
