//! Region -> host rules of the official Huawei SDKs:
//! `https://<service>.<region>.myhuaweicloud.com`, except that DRS and IAM
//! in `eu-west-101` live under `myhuaweicloud.eu` (DCS there does not).

use reqwest::Url;

use crate::providers::http::parse_base_url;
use crate::providers::{ConnectionOptions, Service};

pub fn default_host(service: Service, region: &str) -> Option<String> {
    let (name, eu_domain) = match service {
        Service::Drs => ("drs", true),
        Service::Dcs => ("dcs", false),
        Service::Iam => ("iam", true),
        Service::Polardb | Service::Dts | Service::Ram => return None,
    };
    let domain = if eu_domain && region == "eu-west-101" {
        "myhuaweicloud.eu"
    } else {
        "myhuaweicloud.com"
    };
    Some(format!("{name}.{region}.{domain}"))
}

fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn base_url(service: Service, options: &ConnectionOptions) -> Result<Url, String> {
    if let Some(base) = options.base_url_for(service) {
        return parse_base_url(base);
    }
    if !valid_region(&options.region) {
        return Err(format!("invalid region {:?}", options.region));
    }
    let host = default_host(service, &options.region)
        .ok_or_else(|| format!("{service} is not a Huawei Cloud service"))?;
    parse_base_url(&format!("https://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_region_rules() {
        let host = |s, r| default_host(s, r).unwrap();
        assert_eq!(
            host(Service::Drs, "cn-north-4"),
            "drs.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(
            host(Service::Drs, "eu-west-101"),
            "drs.eu-west-101.myhuaweicloud.eu"
        );
        assert_eq!(
            host(Service::Dcs, "eu-west-101"),
            "dcs.eu-west-101.myhuaweicloud.com"
        );
        assert_eq!(
            host(Service::Dcs, "ap-southeast-3"),
            "dcs.ap-southeast-3.myhuaweicloud.com"
        );
        assert_eq!(
            host(Service::Iam, "eu-west-101"),
            "iam.eu-west-101.myhuaweicloud.eu"
        );
        assert_eq!(
            host(Service::Iam, "cn-north-4"),
            "iam.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(default_host(Service::Polardb, "cn-north-4"), None);
    }

    #[test]
    fn overrides() {
        let mut options = ConnectionOptions::new("cn-north-4");
        assert_eq!(
            base_url(Service::Dcs, &options).unwrap().as_str(),
            "https://dcs.cn-north-4.myhuaweicloud.com/"
        );
        options.endpoint = Some("http://127.0.0.1:7000".into());
        assert_eq!(
            base_url(Service::Drs, &options).unwrap().as_str(),
            "http://127.0.0.1:7000/"
        );
        options.endpoints.insert(Service::Iam, "iam.example".into());
        assert_eq!(
            base_url(Service::Iam, &options).unwrap().as_str(),
            "https://iam.example/"
        );
    }
}
