"""Region -> host maps of the official SDKs, for tests/endpoint_maps.rs.

Reads region ids (one per line) on stdin and prints one JSON object:
for each service, the SDK's own region map (the regions it names) and the
host its endpoint logic gives for every region it was asked about.
"""

import json
import sys
from urllib.parse import urlparse

from alibabacloud_dts20200101.client import Client as DtsClient
from alibabacloud_polardb20170801.client import Client as PolardbClient
from alibabacloud_tea_openapi import models as open_api_models
from huaweicloudsdkdcs.v2.region.dcs_region import DcsRegion
from huaweicloudsdkdrs.v3.region.drs_region import DrsRegion
from huaweicloudsdkiam.v3.region.iam_region import IamRegion


def alibaba(client_class, product, regions):
    config = open_api_models.Config(
        access_key_id="AK", access_key_secret="SK", region_id="cn-hangzhou"
    )
    client = client_class(config)

    def host(region):
        return client.get_endpoint(
            product, region, client._endpoint_rule, "", "", client._endpoint_map, None
        )

    return {
        "map": dict(client._endpoint_map),
        "hosts": {region: host(region) for region in regions},
    }


def huawei(region_class):
    hosts = {}
    for region_id, region in region_class.static_fields.items():
        hosts[region_id] = urlparse(region.endpoints[0]).netloc
    return {"map": hosts, "hosts": hosts}


def main():
    regions = [line.strip() for line in sys.stdin if line.strip()]
    print(
        json.dumps(
            {
                "polardb": alibaba(PolardbClient, "polardb", regions),
                "dts": alibaba(DtsClient, "dts", regions),
                "drs": huawei(DrsRegion),
                "dcs": huawei(DcsRegion),
                "iam": huawei(IamRegion),
            }
        )
    )


if __name__ == "__main__":
    main()
