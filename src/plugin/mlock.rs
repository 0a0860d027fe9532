//! Vault asks its plugins to lock their memory (`VAULT_PLUGIN_MLOCK_ENABLED`,
//! set unless the server has `disable_mlock = true`), so that passwords and
//! keys never reach swap; the Go SDK then calls `mlockall` and refuses to
//! serve when it fails. So do we.

use std::io;

/// Locks every current and future page of this process in memory.
pub fn lock_all() -> io::Result<()> {
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What an operator needs to know when locking failed.
pub fn refusal(err: &io::Error, program: &str) -> String {
    format!(
        "cannot lock the plugin's memory (mlockall: {err}). The server asked for it \
         (VAULT_PLUGIN_MLOCK_ENABLED=true, Vault's default unless disable_mlock = true) so that \
         passwords and keys never reach swap. Give the plugin the IPC_LOCK capability \
         (`setcap cap_ipc_lock=+ep {program}` in the plugin directory; its SHA-256 stays the same), \
         or raise the server's memlock limit (systemd: LimitMEMLOCK=infinity), or set \
         disable_mlock = true in the server configuration"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_the_capability_and_the_ways_out() {
        let err = io::Error::from_raw_os_error(libc::EPERM);
        let text = refusal(&err, "vault-plugin-secrets-cloudrotate");
        assert!(text.contains("Operation not permitted"), "{text}");
        assert!(
            text.contains("setcap cap_ipc_lock=+ep vault-plugin-secrets-cloudrotate"),
            "{text}"
        );
        assert!(text.contains("LimitMEMLOCK") && text.contains("disable_mlock = true"));
    }
}
