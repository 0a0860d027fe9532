"""The SDK half of tests/error_paths.json: each error path, provoked with
the official SDKs against the emulator, parses into the status and code the
Rust clients see (tests/error_paths.rs checks those, with their class)."""

import json
import pathlib

import pytest
from conftest import ALI_USER, DCS_ID, DRS_JOB, DTS_JOB, HW_USER_ID
from test_emulator_conformance import (
    CLUSTER,
    DcsClient,
    DrsClient,
    DtsClient,
    IamClient,
    PolarClient,
    RamClient,
    dcs_models,
    drs_reset,
    dts_models,
    hw_client,
    hw_exceptions,
    iam_models,
    polar_models,
    ram_models,
    tea_config,
    tea_exceptions,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PATHS = json.loads((pathlib.Path(__file__).resolve().parents[1] / "error_paths.json").read_text())["paths"]


def polardb_change(emu, cluster, password):
    return PolarClient(tea_config(emu)).modify_account_password(
        polar_models.ModifyAccountPasswordRequest(
            dbcluster_id=cluster, account_name="testacc", new_account_password=password
        )
    )


def dts_change(emu, job, password):
    return DtsClient(tea_config(emu)).modify_dts_job_password(
        dts_models.ModifyDtsJobPasswordRequest(
            dts_job_id=job, endpoint="src", user_name="dtstest", password=password, region_id="cn-hangzhou"
        )
    )


def create_iam_key(emu):
    return hw_client(emu, IamClient, global_service=True).create_permanent_access_key(
        iam_models.CreatePermanentAccessKeyRequest(
            body=iam_models.CreatePermanentAccessKeyRequestBody(
                credential=iam_models.CreateCredentialOption(user_id=HW_USER_ID)
            )
        )
    )


def dcs_reset(emu, password):
    return hw_client(emu, DcsClient).reset_password(
        dcs_models.ResetPasswordRequest(
            instance_id=DCS_ID,
            body=dcs_models.ResetInstancePasswordBody(new_password=password, no_password_access=False),
        )
    )


def dcs_show(emu, instance):
    return hw_client(emu, DcsClient).show_instance(dcs_models.ShowInstanceRequest(instance_id=instance))


def provoke(emu, path):
    """Runs the calls of `path`; the last one must fail."""
    if path == "polardb_password_malformed":
        polardb_change(emu, CLUSTER, "short")
    elif path == "polardb_cluster_missing":
        polardb_change(emu, "pc-nope", "Valid-P@ss-1")
    elif path == "polardb_service_unavailable":
        emu.set_faults({"scripted": [{"api": "polardb.ModifyAccountPassword", "code": "ServiceUnavailable", "count": 5}]})
        polardb_change(emu, CLUSTER, "Valid-P@ss-1")
    elif path == "dts_same_password":
        dts_change(emu, DTS_JOB, "Same-P@ss-1")
        dts_change(emu, DTS_JOB, "Same-P@ss-1")
    elif path == "dts_job_missing":
        DtsClient(tea_config(emu)).describe_dts_job_detail(
            dts_models.DescribeDtsJobDetailRequest(dts_job_id="nojob", region_id="cn-hangzhou")
        )
    elif path == "dts_job_state":
        emu.admin("PATCH", f"dts/{DTS_JOB}", {"status": "Modifying"})
        dts_change(emu, DTS_JOB, "Valid-P@ss-1")
    elif path == "ram_key_limit":
        # The seeded user already has two keys.
        RamClient(tea_config(emu)).create_access_key(ram_models.CreateAccessKeyRequest(user_name=ALI_USER))
    elif path == "dcs_invalid_password":
        dcs_reset(emu, "short")
    elif path == "dcs_instance_missing":
        dcs_show(emu, "nope")
    elif path == "dcs_not_running":
        emu.admin("PATCH", f"dcs/{DCS_ID}", {"status": "RESTARTING"})
        dcs_reset(emu, "Valid-P@ss-1")
    elif path == "dcs_gateway_timeout":
        emu.set_faults({"scripted": [{"api": "dcs.ShowInstance", "code": "APIGW.0201", "status": 504, "count": 5}]})
        dcs_show(emu, DCS_ID)
    elif path == "drs_busy":
        emu.set_faults({"scripted": [{"api": "drs.BatchResetPassword", "code": "DRS.M01504", "count": 5}]})
        drs_reset(hw_client(emu, DrsClient), (DRS_JOB, "so", "Valid-P@ss-1"))
    elif path == "iam_key_limit":
        # The seeded user already has two keys.
        create_iam_key(emu)
    elif path == "iam_key_missing":
        hw_client(emu, IamClient, global_service=True).delete_permanent_access_key(
            iam_models.DeletePermanentAccessKeyRequest(access_key="NOSUCHACCESSKEY00001")
        )
    else:
        raise AssertionError(f"tests/error_paths.json names an unknown path {path!r}")


@pytest.mark.parametrize("expected", PATHS, ids=[p["path"] for p in PATHS])
def test_the_sdks_parse_the_code_the_rust_clients_see(emu, expected):
    with pytest.raises((tea_exceptions.AlibabaCloudException, hw_exceptions.SdkException)) as raised:
        provoke(emu, expected["path"])
    error = raised.value
    if isinstance(error, tea_exceptions.AlibabaCloudException):
        seen = (error.status_code, error.code)
    else:
        seen = (error.status_code, error.error_code)
    assert seen == (expected["status"], expected["code"])
