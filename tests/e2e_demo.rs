//! `make demo`'s script, run the way a newcomer's terminal runs it but
//! non-interactively (`DEMO_NONINTERACTIVE=1`): with the freshly built
//! binaries, OpenBao 2.7.2, PostgreSQL and Redis from `make tools`, and a
//! state directory of its own under `target/e2e/`. It must end with both
//! single-account roles agreeing, every login it prints going as a user
//! expects (Vault's password logs in, the old one is refused; a dual-account
//! role's previous account still logs in after a rotation and its old
//! password is refused after the next one; a dynamic role's account logs in
//! until its lease is revoked, and a DCS one cannot write; a library set's
//! checked-out password logs in until its check-in), exit 0, never print a
//! connection's secret key or a server's administrator password, and leave
//! no process behind (the emulator, OpenBao, the plugin, PostgreSQL and both
//! Redis servers), also when interrupted.

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

/// Pids of live processes whose working directory is inside `dir`:
/// PostgreSQL's (every one of them works in its data directory) and the
/// Redis servers' (each in its own folder).
fn processes_working_in(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
        if exe_of(pid).is_some() && cwd.is_ok_and(|cwd| cwd.starts_with(dir)) {
            pids.push(pid);
        }
    }
    pids
}

/// Asserts that the emulator, the servers (OpenBao, PostgreSQL, Redis) and
/// the plugin processes are gone (waiting a little: the plugin exits on its
/// own once its server is gone).
fn assert_all_stopped(dir: &Path, pids: &[(i32, PathBuf)], output: &str) {
    let plugin = dir.join("plugins").join("cloudrotate");
    let dir = std::fs::canonicalize(dir).expect("the demo directory");
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
            .chain(
                processes_working_in(&dir)
                    .into_iter()
                    .map(|pid| format!("{pid} working in the demo directory")),
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

fn postgres_binary() -> PathBuf {
    let pg_ctl = Tool::Postgres.path();
    std::fs::canonicalize(pg_ctl.with_file_name("postgres")).expect("resolve postgres")
}

fn redis_binary() -> PathBuf {
    std::fs::canonicalize(Tool::RedisServer.path()).expect("resolve redis-server")
}

/// Every process the script says it started, with the binary it runs.
fn started_processes(output: &str) -> Vec<(i32, PathBuf)> {
    vec![
        (
            pid_after(output, "listening on"),
            PathBuf::from(EMULATOR_BINARY),
        ),
        (pid_after(output, "unsealed and active"), bao_binary()),
        (
            pid_after(output, "behind PolarDB cluster"),
            postgres_binary(),
        ),
        (
            pid_after(output, "behind DCS instance dcs-demo-cache"),
            redis_binary(),
        ),
        (
            pid_after(output, "behind DCS instance dcs-demo-sessions"),
            redis_binary(),
        ),
    ]
}

/// The login lines the script printed (`ok  <client> as <user>, <what>:
/// <outcome>`, or `UNEXPECTED  ...`), as (client, user, what, outcome).
fn logins(output: &str) -> Vec<(String, String, String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("ok  ")?;
            let (client, rest) = rest.split_once(" as ")?;
            if client != "psql" && client != "redis-cli" {
                return None;
            }
            let (user, rest) = rest.split_once(", ")?;
            let (what, outcome) = rest.split_once(": ")?;
            Some((client.into(), user.into(), what.into(), outcome.into()))
        })
        .collect()
}

/// What a user checks in the login lines: for each client, the single-account
/// role's password logs in and its old ones are refused; after each rotation of
/// the dual-account role the new account logs in, the previous one still logs
/// in, and after the next rotation that account's old password is refused.
fn assert_logins_as_expected(output: &str) {
    let logins = logins(output);
    let refused =
        |outcome: &str, why: &str| outcome.starts_with("refused (") && outcome.contains(why);
    for (client, single_user, why) in [
        ("psql", "app", "password authentication failed"),
        ("redis-cli", "default", "WRONGPASS"),
    ] {
        let lines: Vec<_> = logins.iter().filter(|l| l.0 == client).collect();
        let find = |what: &str| {
            lines
                .iter()
                .filter(|l| l.2 == what)
                .map(|l| (l.1.as_str(), l.3.as_str()))
                .collect::<Vec<_>>()
        };
        let vault = find("Vault's password (static-creds)");
        assert_eq!(
            vault,
            [(single_user, "logged in")],
            "{client}: Vault's password logs in:\n{output}"
        );
        let old = find("the password before rotate-role (last_password)");
        assert!(
            old.len() == 1 && old[0].0 == single_user && refused(old[0].1, why),
            "{client}: the password before rotate-role is refused: {old:?}\n{output}"
        );
        // Dual: after creation both accounts log in with Vault's passwords.
        let active = find("Vault's password (the active account)");
        let inactive = find("Vault's last_password (the inactive account)");
        assert!(
            active.len() == 1
                && inactive.len() == 1
                && active[0].0 != inactive[0].0
                && active[0].1 == "logged in"
                && inactive[0].1 == "logged in",
            "{client}: both accounts log in after creation: {active:?} {inactive:?}\n{output}"
        );
        // Two rotations, each: the new account logs in, the previous one
        // still does, the rotated account's old password is refused.
        let new = find("new password (active)");
        let previous = find("previous password (last_password, still valid)");
        let replaced = find("password before this rotation");
        assert!(
            new.len() == 2 && new.iter().all(|l| l.1 == "logged in"),
            "{client}: the newly active account logs in after each rotation: {new:?}\n{output}"
        );
        assert!(
            previous.len() == 2 && previous.iter().all(|l| l.1 == "logged in"),
            "{client}: the previous account still logs in after each rotation: {previous:?}\n{output}"
        );
        assert!(
            replaced.len() == 2 && replaced.iter().all(|l| refused(l.1, why)),
            "{client}: the rotated account's old password is refused: {replaced:?}\n{output}"
        );
        for turn in 0..2 {
            assert_ne!(
                new[turn].0, previous[turn].0,
                "{client}: the accounts take turns"
            );
            assert_eq!(
                new[turn].0, replaced[turn].0,
                "{client}: the rotated account"
            );
        }
        // The account that still worked after the first rotation is the
        // one whose old password the second rotation replaced.
        assert_eq!(
            previous[0].0, replaced[1].0,
            "{client}: the previous account works until the next rotation:\n{output}"
        );
    }
}

/// The dynamic roles and the library set (steps 14 to 16): each lease's
/// account logs in, and is refused once the lease is revoked; the DCS
/// account (acl_role=read) cannot write; the set's account is refused its
/// seeded password (creating the set rotated it), logs in with the
/// checked-out password, and is refused it after the check-in.
fn assert_leases_as_expected(output: &str) {
    let logins = logins(output);
    let find = |client: &str, what: &str| {
        logins
            .iter()
            .filter(|l| l.0 == client && l.2 == what)
            .map(|l| (l.1.as_str(), l.3.as_str()))
            .collect::<Vec<_>>()
    };
    let refused =
        |outcome: &str, why: &str| outcome.starts_with("refused (") && outcome.contains(why);
    for (client, prefix, why) in [
        ("psql", "v_pola_", "password authentication failed"),
        ("redis-cli", "v-dcs-readers-", "WRONGPASS"),
    ] {
        let leased = find(client, "the lease's password (creds)");
        assert!(
            leased.len() == 1 && leased[0].0.starts_with(prefix) && leased[0].1 == "logged in",
            "{client}: the dynamic account logs in: {leased:?}\n{output}"
        );
        let revoked = find(client, "the lease's password, after lease revoke");
        assert!(
            revoked.len() == 1 && revoked[0].0 == leased[0].0 && refused(revoked[0].1, why),
            "{client}: the dynamic account is refused after its lease is revoked: {revoked:?}\n{output}"
        );
    }
    assert!(
        output.lines().any(|line| {
            line.trim_start()
                .starts_with("ok  acl_role=read: the write is refused (NOPERM")
        }),
        "the read-only DCS account cannot write:\n{output}"
    );

    let why = "password authentication failed";
    let seeded = find("psql", "the seeded password (the set rotated it)");
    assert!(
        seeded.len() == 1 && seeded[0].0 == "report" && refused(seeded[0].1, why),
        "creating the set rotated its accounts: {seeded:?}\n{output}"
    );
    let lent = find("psql", "the checked-out password");
    assert_eq!(
        lent,
        [("report", "logged in")],
        "the checked-out password logs in:\n{output}"
    );
    let returned = find("psql", "the checked-out password, after check-in");
    assert!(
        returned.len() == 1 && returned[0].0 == "report" && refused(returned[0].1, why),
        "the checked-out password is refused after the check-in: {returned:?}\n{output}"
    );
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

    assert!(
        output.contains("Every login went as expected"),
        "{everything}"
    );
    assert!(!everything.contains("UNEXPECTED"), "{everything}");
    assert_logins_as_expected(&output);
    assert_leases_as_expected(&output);
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
    for step in 1..=16 {
        assert!(
            output.contains(&format!("[{step}/16]")),
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
        "$ bao write database/static-roles/polardb-dual target=polardb-account",
        "$ bao write database/static-roles/dcs-dual target=dcs-instance",
        "usernames=app_blue,app_green",
        "$ bao write -f database/rotate-role/polardb-dual",
        "$ bao write -f database/rotate-role/dcs-dual",
        "$ bao read database/static-creds/polardb-dual",
        "$ bao read -format=json database/history/dcs-dual",
        "$ bao write database/roles/polardb-reports target=polardb-account",
        "grants=appdb=ReadOnly",
        "$ bao read database/creds/polardb-reports",
        "$ bao lease renew -increment=2h database/creds/polardb-reports/",
        "$ bao lease revoke -sync database/creds/polardb-reports/",
        "$ bao write database/roles/dcs-readers target=dcs-instance",
        "acl_role=read",
        "$ bao read database/creds/dcs-readers",
        "$ bao lease revoke -sync database/creds/dcs-readers/",
        "$ bao write database/library/polardb-pool target=polardb-account",
        "service_account_names=report,report_2",
        "$ bao write -f database/library/polardb-pool/check-out",
        "$ bao read database/library/polardb-pool/status",
        "$ bao write -f database/library/polardb-pool/check-in",
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
    // Nor do the servers' administrator passwords (in the seed only).
    let seed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("seed.json")).expect("read seed.json"),
    )
    .expect("the seed is JSON");
    let admins = [
        &seed["alicloud"]["polardb_clusters"][0]["backing"]["admin_password"],
        &seed["huaweicloud"]["dcs_instances"][0]["backing"]["admin_password"],
        &seed["huaweicloud"]["dcs_instances"][1]["backing"]["admin_password"],
    ];
    for admin in admins {
        let admin = admin.as_str().expect("an administrator password");
        assert!(admin.len() >= 20, "a random administrator password");
        assert!(
            !everything.contains(admin),
            "a server's administrator password was printed:\n{everything}"
        );
    }

    assert_all_stopped(&dir, &started_processes(&output), &everything);
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
            .unwrap_or_else(|e| panic!("no [7/16] step ({e}):\n{output}"));
        output.push_str(&line);
        output.push('\n');
        if line.contains("[7/16]") {
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
    assert_all_stopped(&dir, &started_processes(&output), &everything);
    let _ = std::fs::remove_dir_all(&dir);
}
