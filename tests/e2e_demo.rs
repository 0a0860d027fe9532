//! `make demo`'s script, run the way a newcomer's terminal runs it but
//! non-interactively (`DEMO_NONINTERACTIVE=1`): with the freshly built
//! binaries, OpenBao 2.7.2 from `make tools`, and a state directory of its
//! own under `target/e2e/`. It must end with both roles agreeing, exit 0,
//! never print a connection's secret key, and leave no process behind, also
//! when interrupted.

#[path = "support/tools.rs"]
mod tools;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tools::{Tool, tools_dir};

const PLUGIN_BINARY: &str = env!("CARGO_BIN_EXE_vault-plugin-secrets-cloudrotate");
const EMULATOR_BINARY: &str = env!("CARGO_BIN_EXE_cloudrotate-emulator");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh");

fn demo_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("e2e")
        .join(format!("demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the demo directory");
    dir
}

/// The script, non-interactive, in its own process group (as a terminal
/// runs a foreground job), stdout piped.
fn spawn_demo(dir: &Path) -> Child {
    // The script would refuse too, but in a screenful of its output.
    Tool::OpenBao.path();
    Command::new("bash")
        .arg(SCRIPT)
        .env("DEMO_NONINTERACTIVE", "1")
        .env("DEMO_DIR", dir)
        .env("CLOUDROTATE_TOOLS", tools_dir())
        .env("CLOUDROTATE_PLUGIN_BIN", PLUGIN_BINARY)
        .env("CLOUDROTATE_EMULATOR_BIN", EMULATOR_BINARY)
        .env("NO_COLOR", "1")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run scripts/demo.sh")
}

/// Lines of the child's stdout as they come, from a reader thread.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn stderr_text(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}

/// Waits for the script to exit, killing its process group after `limit`.
fn wait_with_limit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            return status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group of our own child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("scripts/demo.sh did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid the script printed on a line containing `marker`: `(pid N)`.
fn pid_after(output: &str, marker: &str) -> i32 {
    let line = output
        .lines()
        .find(|line| line.contains(marker) && line.contains("(pid "))
        .unwrap_or_else(|| panic!("no line with {marker:?} and a pid in:\n{output}"));
    let rest = &line[line.find("(pid ").unwrap() + 5..];
    rest[..rest.find(')').unwrap()]
        .parse()
        .unwrap_or_else(|e| panic!("pid in {line:?}: {e}"))
}

fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Pids of processes running `binary`.
fn processes_of(binary: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if exe_of(pid).is_some_and(|exe| exe == binary) {
            pids.push(pid);
        }
    }
    pids
}

/// Asserts that the emulator, the server and the plugin processes are gone
/// (waiting a little: the plugin exits on its own once its server is gone).
fn assert_all_stopped(dir: &Path, pids: &[(i32, PathBuf)], output: &str) {
    let plugin = dir.join("plugins").join("cloudrotate");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<String> = pids
            .iter()
            .filter(|(pid, binary)| exe_of(*pid).is_some_and(|exe| exe == *binary))
            .map(|(pid, binary)| format!("{pid} {}", binary.display()))
            .chain(
                processes_of(&plugin)
                    .into_iter()
                    .map(|pid| format!("{pid} plugin")),
            )
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the demo ended: {alive:?}\n{output}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !dir.join("pids").exists(),
        "the pid file is removed once everything is stopped"
    );
}

fn bao_binary() -> PathBuf {
    std::fs::canonicalize(Tool::OpenBao.path()).expect("resolve bao")
}

#[test]
fn the_demo_runs_non_interactively_and_every_copy_agrees() {
    let dir = demo_dir("run");
    let started = Instant::now();
    let mut child = spawn_demo(&dir);
    let lines = stdout_lines(&mut child);
    let stderr = stderr_text(&mut child);
    let status = wait_with_limit(&mut child, Duration::from_secs(300));
    let output: String = lines.iter().map(|line| line + "\n").collect();
    let errors = stderr.join().unwrap_or_default();
    let everything = format!("{output}\n--- stderr ---\n{errors}");
    assert!(
        status.success(),
        "the demo failed ({status}):\n{everything}"
    );
    eprintln!("the demo took {:.1?}", started.elapsed());

    for role in ["polardb-app", "dcs-cache"] {
        assert!(
            output
                .lines()
                .any(|l| l.trim_start().starts_with("AGREE") && l.contains(&format!(" {role}:"))),
            "no AGREE line for {role}:\n{everything}"
        );
    }
    assert!(!everything.contains("DISAGREE"), "{everything}");
    assert!(output.contains("All copies agree"), "{everything}");
    for step in 1..=9 {
        assert!(
            output.contains(&format!("[{step}/9]")),
            "step {step} is shown:\n{output}"
        );
    }
    for command in [
        "$ bao plugin register -sha256=",
        "$ bao secrets enable -path=database cloudrotate",
        "$ bao write database/config/ali provider=alicloud",
        "$ bao write database/static-roles/polardb-app target=polardb-account",
        "dependents=dts:ali/dts-demo-job/src",
        "$ bao write database/static-roles/dcs-cache target=dcs-instance",
        "dependents=drs:hw/drs-demo-job/so",
        "$ bao write -f database/rotate-role/polardb-app",
        "$ bao write -f database/rotate-role/dcs-cache",
        "$ bao read database/static-creds/polardb-app",
        "$ bao read database/static-creds/dcs-cache",
    ] {
        assert!(
            output.contains(command),
            "the command {command:?} is shown:\n{output}"
        );
    }

    // The connections' secret keys never appear; they were passed as files.
    for file in ["ali.secret_key", "hw.secret_key"] {
        let secret =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
        assert!(secret.len() >= 20, "{file} holds a key");
        assert!(
            !everything.contains(secret.trim()),
            "the secret key in {file} was printed:\n{everything}"
        );
    }
    assert!(output.contains("secret_key=@"), "{output}");

    let pids = [
        (
            pid_after(&output, "listening on"),
            PathBuf::from(EMULATOR_BINARY),
        ),
        (pid_after(&output, "unsealed and active"), bao_binary()),
    ];
    assert_all_stopped(&dir, &pids, &everything);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_demo_stops_what_it_started() {
    let dir = demo_dir("interrupted");
    let mut child = spawn_demo(&dir);
    let lines = stdout_lines(&mut child);
    let stderr = stderr_text(&mut child);
    // Interrupt once the server runs and the plugin is mounted, as Ctrl-C
    // does: SIGINT to the whole foreground process group.
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| panic!("no [6/9] step ({e}):\n{output}"));
        output.push_str(&line);
        output.push('\n');
        if line.contains("[6/9]") {
            break;
        }
    }
    let plugin = dir.join("plugins").join("cloudrotate");
    assert!(
        !processes_of(&plugin).is_empty(),
        "the mounted plugin runs:\n{output}"
    );
    // SAFETY: kill(2) on the process group of our own child.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let status = wait_with_limit(&mut child, Duration::from_secs(60));
    output.extend(lines.iter().map(|line| line + "\n"));
    let everything = format!(
        "{output}\n--- stderr ---\n{}",
        stderr.join().unwrap_or_default()
    );
    assert!(
        !status.success(),
        "an interrupted demo fails:\n{everything}"
    );
    assert!(everything.contains("interrupted"), "{everything}");
    let pids = [
        (
            pid_after(&output, "listening on"),
            PathBuf::from(EMULATOR_BINARY),
        ),
        (pid_after(&output, "unsealed and active"), bao_binary()),
    ];
    assert_all_stopped(&dir, &pids, &everything);
    let _ = std::fs::remove_dir_all(&dir);
}
