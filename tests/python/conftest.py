"""Fixtures for the emulator conformance tests: start the emulator binary
once per session (path from EMULATOR_BIN, default target/release), and give
each test a freshly reset and seeded emulator plus an admin helper."""

import json
import os
import pathlib
import subprocess
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EMULATOR_BIN = os.environ.get(
    "EMULATOR_BIN", str(ROOT / "target" / "release" / "cloudrotate-emulator")
)

# Alibaba: a permanent RAM key and a temporary (STS) one.
ALI_USER = "rotator"
ALI_AK = "LTAI5tEmulatorConformance"
ALI_SK = "ali-conformance-secret-0001"
STS_AK = "STS.NUEmulatorTemporary"
STS_SK = "sts-conformance-secret"
STS_TOKEN = "CAIS-test-security-token"

# Huawei: a permanent key and a temporary one, in one project.
HW_USER_ID = "0b1f1e5c2a5d4f6e8a7b9c0d1e2f3a4b"
HW_DOMAIN_ID = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
HW_AK = "QTWAOYTTINDUT2QVKYUC"
HW_SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
HW_TMP_AK = "TMPAKEMULATORTEMPKEY"
HW_TMP_SK = "tmp-secret-for-conformance-tests-000000"
HW_TOKEN = "gQpjbi1ub3J0aC00-test-security-token"
PROJECT = "054ba152d480d55b2f5dc0069e7ddef0"

DTS_JOB = "l3m1213ye7l1234"
DRS_JOB = "140b5236-88ad-43c8-811c-1268453jb101"
DRS_PAUSED_JOB = "2a0c5e7f-0000-4000-8000-00000000dead"
DCS_ID = "3f7e1c7e-8d3a-4b6e-9d0f-8f1e2a3b4c5d"

SEED = {
    "alicloud": {
        "users": [
            {
                "name": ALI_USER,
                "access_keys": [
                    {"id": ALI_AK, "secret": ALI_SK},
                    {"id": STS_AK, "secret": STS_SK, "security_token": STS_TOKEN},
                ],
            },
            {"name": "spare", "access_keys": []},
        ],
        "polardb_clusters": [
            {
                "id": "pc-bp1234567890abcde",
                "region": "cn-hangzhou",
                "accounts": [{"name": "testacc", "password": "Old-Passw0rd"}],
            }
        ],
        "dts_jobs": [
            {
                "id": DTS_JOB,
                "region": "cn-hangzhou",
                "status": "Synchronizing",
                "src": {"user": "dtstest", "password": "Src-Passw0rd"},
                "dest": {"user": "dtsdest", "password": "Dest-Passw0rd"},
            },
            {
                "id": "dtsmodifying01",
                "region": "cn-hangzhou",
                "status": "Modifying",
                "src": {"user": "dtstest", "password": "Src-Passw0rd"},
                "dest": {"user": "dtsdest", "password": "Dest-Passw0rd"},
            },
        ],
    },
    "huaweicloud": {
        "users": [
            {
                "id": HW_USER_ID,
                "name": "rotator",
                "access_keys": [
                    {"access": HW_AK, "secret": HW_SK},
                    {"access": HW_TMP_AK, "secret": HW_TMP_SK, "security_token": HW_TOKEN},
                ],
            },
            {"id": "spareuser0000000000000000000000", "name": "spare"},
        ],
        "projects": [PROJECT],
        "drs_jobs": [
            {
                "id": DRS_JOB,
                "project_id": PROJECT,
                "status": "INCRE_TRANSFER_STARTED",
                "so": {"password": "So-Passw0rd"},
                "ta": {"password": "Ta-Passw0rd"},
            },
            {
                "id": DRS_PAUSED_JOB,
                "project_id": PROJECT,
                "status": "CONFIGURATION",
                "so": {"password": "So-Passw0rd"},
                "ta": {"password": "Ta-Passw0rd"},
            },
        ],
        "dcs_instances": [
            {
                "id": DCS_ID,
                "project_id": PROJECT,
                "status": "RUNNING",
                "password": "Old-P@ss1",
            }
        ],
    },
}


class Emulator:
    def __init__(self, url, process):
        self.url = url
        self.host = url.split("://", 1)[1]
        self.process = process

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"admin {method} {path}: {error.code} {error.read()!r}")

    def reset(self):
        self.admin("POST", "reset")

    def seed(self, seed):
        self.admin("POST", "seed", seed)

    def counters(self):
        return self.admin("GET", "counters")

    def set_faults(self, faults):
        return self.admin("PUT", "faults", faults)


@pytest.fixture(scope="session")
def emulator_process():
    if not os.path.exists(EMULATOR_BIN):
        pytest.fail(f"emulator binary not found at {EMULATOR_BIN} (set EMULATOR_BIN)")
    process = subprocess.Popen(
        [EMULATOR_BIN, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    assert line.startswith("listening on "), line
    emulator = Emulator(line.rsplit(" ", 1)[1], process)
    yield emulator
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def emu(emulator_process):
    emulator_process.reset()
    emulator_process.seed(SEED)
    return emulator_process
