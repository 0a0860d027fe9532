"""Signing oracle for tests/providers_sign_differential.rs.

Reads one JSON document from stdin, {"cases": [...]}, signs every case with
the OFFICIAL SDKs pinned in requirements.txt and writes {"results": [...]}
(same order, same ids) to stdout. Nothing here signs by itself: every
canonical string, string-to-sign, signature and Authorization header comes
from SDK code. The only glue is turning JSON into the SDKs' request objects.

Case kinds:
  acs3      Alibaba ACS3-HMAC-SHA256, low level, twice: tea-openapi
            `Utils.get_authorization` and openapi-util
            `Client.get_authorization` on a hand-built DaraRequest (time and
            nonce are the x-acs-date / x-acs-signature-nonce headers given).
  acs3_wire The same, on a request as our client put it on the wire: the
            query is decoded from the raw query string, the payload hash is
            the SDK's hash of the body.
  v2        Alibaba RPC V2 HMAC-SHA1: aliyunsdkcore's module-private
            string-to-sign and signature functions, and tea's
            `Utils.get_rpcsignature`.
  v2_full   aliyunsdkcore's whole `get_signed_url`, with time and nonce
            pinned through `parameter_helper` (reference section 7).
  hw        Huawei SDK-HMAC-SHA256 with huaweicloudsdkcore's `Signer`: its
            canonical request, string-to-sign and the Authorization that
            `Signer.sign` sets. The time is pinned by the X-Sdk-Date header.
  hw_wire   The same, given the raw path and raw query string as sent.
"""

import json
import sys
from urllib.parse import unquote

import aliyunsdkcore.auth.composer.rpc_signature_composer as rpc_composer
import aliyunsdkcore.utils.parameter_helper as parameter_helper
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from alibabacloud_tea_openapi.utils import Utils as TeaUtils
from darabonba.request import DaraRequest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

# Module-level names with two leading underscores are not mangled.
compose_string_to_sign = getattr(rpc_composer, "__compose_string_to_sign")
get_signature = getattr(rpc_composer, "__get_signature")

ACS3 = "ACS3-HMAC-SHA256"


def pairs_to_dict(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"repeated key {key!r}: the Alibaba SDKs keep parameters in a dict")
        out[key] = value
    return out


def decode_query(raw):
    """`a=1&b=x%20y` -> [("a", "1"), ("b", "x y")], exactly as sent (no `+`)."""
    out = []
    for part in raw.split("&") if raw else []:
        key, _, value = part.partition("=")
        out.append((unquote(key), unquote(value)))
    return out


def dara_request(case, query):
    request = DaraRequest()
    request.method = case["method"]
    request.pathname = case["pathname"]
    request.query = query
    # A dict keeps case variants of a name apart; the SDK merges them.
    request.headers = {name: value for name, value in case["headers"]}
    return request


def acs3(case, query):
    body = bytes.fromhex(case["body_hex"])
    payload = TeaUtils.hex_encode(TeaUtils.hash(body, ACS3))
    tea = TeaUtils.get_authorization(
        dara_request(case, query), ACS3, payload, case["ak"], case["secret"]
    )
    util = OpenApiUtil.get_authorization(
        dara_request(case, query), ACS3, payload, case["ak"], case["secret"]
    )
    return {"payload_sha256": payload, "authorization_tea": tea, "authorization_util": util}


def v2(case):
    params = pairs_to_dict(case["params"])
    string_to_sign = compose_string_to_sign(case["method"], dict(params))
    return {
        "string_to_sign": string_to_sign,
        "signature_core": get_signature(string_to_sign, case["secret"]),
        "signature_tea": TeaUtils.get_rpcsignature(dict(params), case["method"], case["secret"]),
    }


def v2_full(case):
    parameter_helper.get_iso_8061_date = lambda: case["timestamp"]
    parameter_helper.get_uuid = lambda: case["nonce"]
    url, string_to_sign = rpc_composer.get_signed_url(
        pairs_to_dict(case["params"]),
        case["ak"],
        case["secret"],
        case["format"],
        case["method"],
        {},
    )
    return {"url": url, "string_to_sign": string_to_sign}


def hw_request(case, resource_path, query):
    return SdkRequest(
        method=case["method"],
        schema="https",
        host=case["host"],
        resource_path=resource_path,
        query_params=list(query),
        header_params={name: value for name, value in case["headers"]},
        body=bytes.fromhex(case["body_hex"]),
    )


def hw(case, resource_path, query):
    signer = Signer(BasicCredentials(case["ak"], case["sk"]))
    # The steps of Signer.sign, kept apart to read the intermediate strings.
    request = hw_request(case, resource_path, query)
    signer._process_content_header(request)
    at = signer._process_header_time(request)
    signer._process_header_host(request)
    signed = signer._process_signed_headers(request)
    canonical = signer._process_canonical_request(request, signed)
    string_to_sign = signer._process_string_to_sign(canonical, at)
    # And the real thing on a fresh request.
    signed_request = signer.sign(hw_request(case, resource_path, query))
    return {
        "canonical_request": canonical,
        "string_to_sign": string_to_sign,
        "authorization": signed_request.header_params["Authorization"],
    }


def run(case):
    kind = case["kind"]
    if kind == "acs3":
        return acs3(case, pairs_to_dict(case["query"]))
    if kind == "acs3_wire":
        return acs3(case, pairs_to_dict(decode_query(case["raw_query"])))
    if kind == "v2":
        return v2(case)
    if kind == "v2_wire":
        params = decode_query(case["raw_query"])
        signature = [value for key, value in params if key == "Signature"]
        case = dict(case, params=[(k, v) for k, v in params if k != "Signature"])
        return dict(v2(case), sent_signature=signature[0] if signature else None)
    if kind == "v2_full":
        return v2_full(case)
    if kind == "hw":
        return hw(case, case["resource_path"], case["query"])
    if kind == "hw_wire":
        return hw(case, case["raw_path"], decode_query(case["raw_query"]))
    raise ValueError(f"unknown case kind {kind!r}")


def main():
    document = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    results = []
    for case in document["cases"]:
        try:
            result = run(case)
        except Exception as error:  # reported per case, the run goes on
            result = {"error": f"{type(error).__name__}: {error}"}
        result["id"] = case["id"]
        results.append(result)
    json.dump({"results": results}, sys.stdout, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
