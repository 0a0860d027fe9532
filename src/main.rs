//! The plugin binary that Vault and OpenBao launch.

fn main() -> std::process::ExitCode {
    cloudrotate::plugin::run(cloudrotate::engine::factory)
}
