//! What the crash suites share: counts from the environment, the chaos
//! that SIGKILLs the plugin at random moments and now and then stops or
//! crashes the whole server and brings it back, and their figure tables.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::server::Server;

/// A count from the environment (CI sets smaller ones), or `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the chaos did, and the server back.
pub struct Chaos {
    pub server: Server,
    pub plugin_kills: u64,
    pub graceful_restarts: u64,
    pub crash_restarts: u64,
}

/// Until `stop`: every 0.3-2.5 s SIGKILL the plugin; every twelfth time
/// first stop (SIGTERM) or crash (SIGKILL) the server, half and half, and
/// start it again.
pub fn run(mut server: Server, seed: u64, stop: &AtomicBool) -> Chaos {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut kills, mut graceful, mut crashes) = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        if (kills + 1) % 12 == 0 {
            if rng.random_bool(0.5) {
                server.stop();
                graceful += 1;
            } else {
                server.crash();
                crashes += 1;
            }
            server.start_again();
        }
        kills += server.kill_plugin() as u64;
    }
    Chaos {
        server,
        plugin_kills: kills,
        graceful_restarts: graceful,
        crash_restarts: crashes,
    }
}

pub fn print_table(title: &str, rows: &[(&str, String)]) {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!("\n{title}");
    for (name, value) in rows {
        println!("  {name:<width$} {value}");
    }
}
