//! `cloudrotate-emulator`: a local stand-in for Alibaba PolarDB, DTS and RAM
//! and Huawei DRS, DCS and IAM. See `cloudrotate::emulator`.

use cloudrotate::emulator::config::{Config, USAGE};
use cloudrotate::emulator::server;

fn main() {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("cloudrotate-emulator: {message}");
            std::process::exit(2);
        }
    };
    if let Err(message) = server::run(config) {
        eprintln!("cloudrotate-emulator: {message}");
        std::process::exit(1);
    }
}
