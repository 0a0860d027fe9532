//! Region -> host rules of the official Huawei SDKs:
//! `https://<service>.<region>.myhuaweicloud.com`, except that DRS and IAM
//! in `eu-west-101` live under `myhuaweicloud.eu` (DCS there does not).

use reqwest::Url;

use super::HuaweiService;
use crate::providers::ConnectionOptions;

pub fn default_host(service: HuaweiService, region: &str) -> String {
    let eu_domain = match service {
        HuaweiService::Drs | HuaweiService::Iam => true,
        HuaweiService::Dcs => false,
    };
    let domain = if eu_domain && region == "eu-west-101" {
        "myhuaweicloud.eu"
    } else {
        "myhuaweicloud.com"
    };
    format!("{service}.{region}.{domain}")
}

/// The base URL for `service`: the configured one, else `https://` + the
/// SDK host for the region.
pub fn base_url(service: HuaweiService, options: &ConnectionOptions) -> Result<Url, String> {
    options.base_url(service.into(), |region| default_host(service, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_region_rules() {
        let host = default_host;
        assert_eq!(
            host(HuaweiService::Drs, "cn-north-4"),
            "drs.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(
            host(HuaweiService::Drs, "eu-west-101"),
            "drs.eu-west-101.myhuaweicloud.eu"
        );
        assert_eq!(
            host(HuaweiService::Dcs, "eu-west-101"),
            "dcs.eu-west-101.myhuaweicloud.com"
        );
        assert_eq!(
            host(HuaweiService::Dcs, "ap-southeast-3"),
            "dcs.ap-southeast-3.myhuaweicloud.com"
        );
        assert_eq!(
            host(HuaweiService::Iam, "eu-west-101"),
            "iam.eu-west-101.myhuaweicloud.eu"
        );
        assert_eq!(
            host(HuaweiService::Iam, "cn-north-4"),
            "iam.cn-north-4.myhuaweicloud.com"
        );
    }

    #[test]
    fn overrides() {
        let mut options = ConnectionOptions::new("cn-north-4");
        assert_eq!(
            base_url(HuaweiService::Dcs, &options).unwrap().as_str(),
            "https://dcs.cn-north-4.myhuaweicloud.com/"
        );
        options.endpoint = Some("http://127.0.0.1:7000".into());
        assert_eq!(
            base_url(HuaweiService::Drs, &options).unwrap().as_str(),
            "http://127.0.0.1:7000/"
        );
        options
            .endpoints
            .insert(HuaweiService::Iam.into(), "iam.example".into());
        assert_eq!(
            base_url(HuaweiService::Iam, &options).unwrap().as_str(),
            "https://iam.example/"
        );
    }
}
