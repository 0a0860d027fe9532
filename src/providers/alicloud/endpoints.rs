//! Region -> host rules of the official SDKs (`_endpoint_rule='regional'`
//! plus the product's endpoint map), and the base URL each service uses.
//! The maps equal the pinned SDKs' in both directions (tests/endpoint_maps.rs
//! reads them from the installed packages).

use reqwest::Url;

use super::AlibabaService;
use crate::providers::ConnectionOptions;

/// The regions the alibabacloud_polardb20170801 9.2.1 SDK's endpoint map sends to the central host.
const POLARDB_CENTRAL: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-heyuan",
    "cn-hangzhou-finance",
    "ap-northeast-2-pop",
    "cn-beijing-finance-1",
    "cn-beijing-finance-pop",
    "cn-beijing-gov-1",
    "cn-beijing-nu16-b01",
    "cn-edge-1",
    "cn-fujian",
    "cn-haidian-cm12-c01",
    "cn-hangzhou-bj-b01",
    "cn-hangzhou-internal-prod-1",
    "cn-hangzhou-internal-test-1",
    "cn-hangzhou-internal-test-2",
    "cn-hangzhou-internal-test-3",
    "cn-hangzhou-test-306",
    "cn-hongkong-finance-pop",
    "cn-huhehaote-nebula-1",
    "cn-qingdao-nebula",
    "cn-shanghai-et15-b01",
    "cn-shanghai-et2-b01",
    "cn-shanghai-inner",
    "cn-shanghai-internal-test-1",
    "cn-shenzhen-inner",
    "cn-shenzhen-st4-d01",
    "cn-shenzhen-su18-b01",
    "cn-wuhan",
    "cn-yushanfang",
    "cn-zhangbei",
    "cn-zhangbei-na61-b01",
    "cn-zhangjiakou-na62-a01",
    "cn-zhengzhou-nebula-1",
    "eu-west-1-oxs",
    "rus-west-1-pop",
];

/// The regions the alibabacloud_dts20200101 5.11.7 SDK's endpoint map sends to the central host.
const DTS_CENTRAL: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-shenzhen",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "eu-west-1",
    "us-west-1",
    "us-east-1",
    "eu-central-1",
    "me-east-1",
    "ap-south-1",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-north-2-gov-1",
    "ap-northeast-2-pop",
    "cn-beijing-finance-1",
    "cn-beijing-finance-pop",
    "cn-beijing-gov-1",
    "cn-beijing-nu16-b01",
    "cn-chengdu",
    "cn-edge-1",
    "cn-fujian",
    "cn-haidian-cm12-c01",
    "cn-hangzhou-bj-b01",
    "cn-hangzhou-internal-prod-1",
    "cn-hangzhou-internal-test-1",
    "cn-hangzhou-internal-test-2",
    "cn-hangzhou-internal-test-3",
    "cn-hangzhou-test-306",
    "cn-hongkong-finance-pop",
    "cn-huhehaote-nebula-1",
    "cn-qingdao-nebula",
    "cn-shanghai-et15-b01",
    "cn-shanghai-et2-b01",
    "cn-shanghai-inner",
    "cn-shanghai-internal-test-1",
    "cn-shenzhen-inner",
    "cn-shenzhen-st4-d01",
    "cn-shenzhen-su18-b01",
    "cn-wuhan",
    "cn-wulanchabu",
    "cn-yushanfang",
    "cn-zhangbei-na61-b01",
    "cn-zhangjiakou-na62-a01",
    "cn-zhengzhou-nebula-1",
    "eu-west-1-oxs",
    "rus-west-1-pop",
];

/// The regions the SDK's map sends to `service`'s central host (none for
/// services without a map).
pub fn central_regions(service: AlibabaService) -> &'static [&'static str] {
    match service {
        AlibabaService::Polardb => POLARDB_CENTRAL,
        AlibabaService::Dts => DTS_CENTRAL,
        AlibabaService::Ram => &[],
    }
}

/// The public host the official SDK uses for `service` in `region`.
pub fn default_host(service: AlibabaService, region: &str) -> String {
    let central = central_regions(service).contains(&region);
    match service {
        AlibabaService::Polardb if central => "polardb.aliyuncs.com".to_owned(),
        AlibabaService::Polardb => format!("polardb.{region}.aliyuncs.com"),
        AlibabaService::Dts if central => "dts.aliyuncs.com".to_owned(),
        AlibabaService::Dts => format!("dts.{region}.aliyuncs.com"),
        // RAM is a global service.
        AlibabaService::Ram => "ram.aliyuncs.com".to_owned(),
    }
}

/// The base URL for `service`: the configured one, else `https://` + the
/// SDK host for the region.
pub fn base_url(service: AlibabaService, options: &ConnectionOptions) -> Result<Url, String> {
    options.base_url(service.into(), |region| default_host(service, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_region_rules() {
        let host = default_host;
        assert_eq!(
            host(AlibabaService::Polardb, "cn-hangzhou"),
            "polardb.aliyuncs.com"
        );
        assert_eq!(
            host(AlibabaService::Polardb, "cn-heyuan"),
            "polardb.aliyuncs.com"
        );
        assert_eq!(
            host(AlibabaService::Polardb, "ap-southeast-1"),
            "polardb.ap-southeast-1.aliyuncs.com"
        );
        assert_eq!(
            host(AlibabaService::Polardb, "cn-shenzhen"),
            "polardb.cn-shenzhen.aliyuncs.com"
        );
        assert_eq!(host(AlibabaService::Dts, "cn-hangzhou"), "dts.aliyuncs.com");
        assert_eq!(
            host(AlibabaService::Dts, "eu-central-1"),
            "dts.aliyuncs.com"
        );
        assert_eq!(
            host(AlibabaService::Dts, "ap-northeast-1"),
            "dts.ap-northeast-1.aliyuncs.com"
        );
        assert_eq!(
            host(AlibabaService::Dts, "cn-guangzhou"),
            "dts.cn-guangzhou.aliyuncs.com"
        );
        assert_eq!(
            host(AlibabaService::Ram, "ap-northeast-1"),
            "ram.aliyuncs.com"
        );
    }

    #[test]
    fn overrides_win_and_http_needs_to_be_explicit() {
        let mut options = ConnectionOptions::new("cn-guangzhou");
        assert_eq!(
            base_url(AlibabaService::Dts, &options).unwrap().as_str(),
            "https://dts.cn-guangzhou.aliyuncs.com/"
        );
        options.endpoint = Some("gateway.internal:8443".into());
        assert_eq!(
            base_url(AlibabaService::Polardb, &options)
                .unwrap()
                .as_str(),
            "https://gateway.internal:8443/"
        );
        options
            .endpoints
            .insert(AlibabaService::Ram.into(), "http://127.0.0.1:9000".into());
        assert_eq!(
            base_url(AlibabaService::Ram, &options).unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        options.endpoint = None;
        options.region = "cn-hangzhou/../x".into();
        assert!(base_url(AlibabaService::Dts, &options).is_err());
    }
}
