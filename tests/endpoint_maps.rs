//! The region -> host maps of the clients equal the official SDKs' at the
//! pinned versions, in both directions: every region an SDK names gets the
//! SDK's host from us, and every region we send to a central host is one
//! the SDK sends there too. `tests/python/endpoint_oracle.py` reads the
//! maps from the installed packages.

#[path = "support/python.rs"]
mod python;
#[path = "support/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use cloudrotate::providers::Service;
use cloudrotate::providers::alicloud::{self, AlibabaService};
use cloudrotate::providers::huaweicloud;
use serde::Deserialize;
use tools::Tool;

#[derive(Deserialize)]
struct SdkMap {
    /// The regions the SDK names, with their host.
    map: BTreeMap<String, String>,
    /// The SDK's host for each region it was asked about.
    hosts: BTreeMap<String, String>,
}

/// Regions outside every map, for the SDKs' regional rule.
const ORDINARY_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "cn-guangzhou",
    "cn-shenzhen",
    "eu-central-1",
    "us-east-1",
    "cn-shanghai-finance-1",
];

fn sdk_maps(regions: &[&str]) -> BTreeMap<String, SdkMap> {
    let mut child = Command::new(Tool::Python.path())
        .arg(python::script("endpoint_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the endpoint oracle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(regions.join("\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the endpoint oracle failed");
    serde_json::from_slice(&output.stdout).expect("the oracle prints JSON")
}

fn ours(service: Service, region: &str) -> String {
    match service.as_str().parse::<AlibabaService>() {
        Ok(service) => alicloud::endpoints::default_host(service, region),
        Err(_) => huaweicloud::endpoints::default_host(service.as_str().parse().unwrap(), region),
    }
}

#[test]
fn region_maps_equal_the_official_sdks_both_ways() {
    let mut asked: Vec<&str> = ORDINARY_REGIONS.to_vec();
    for service in [AlibabaService::Polardb, AlibabaService::Dts] {
        asked.extend(alicloud::endpoints::central_regions(service));
    }
    let sdk = sdk_maps(&asked);
    let mut differences = Vec::new();
    for service in [
        Service::Polardb,
        Service::Dts,
        Service::Drs,
        Service::Dcs,
        Service::Iam,
    ] {
        let sdk = &sdk[service.as_str()];
        assert!(sdk.map.len() > 20, "{service}: the SDK map is too small");
        // SDK -> ours: every region the SDK names.
        for (region, host) in &sdk.map {
            if ours(service, region) != *host {
                differences.push(format!(
                    "{service} {region}: SDK {host}, ours {}",
                    ours(service, region)
                ));
            }
        }
        // Ours -> SDK: every region we were asked about, the central ones
        // included.
        for (region, host) in &sdk.hosts {
            if matches!(service, Service::Polardb | Service::Dts) && ours(service, region) != *host
            {
                differences.push(format!(
                    "{service} {region}: ours {}, SDK {host}",
                    ours(service, region)
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
