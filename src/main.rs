//! The plugin binary that Vault and OpenBao launch.
//!
//! `no_main`: the C `main` below replaces std's start-up (`lang_start`).
//! The host starts a plugin process for every mount and reload, and waits
//! for its handshake line; std's start-up spent 40 to 70 µs of that
//! (measured on the bench VM) mostly finding the main thread's stack guard,
//! which glibc does by reading and parsing `/proc/self/maps`, only to print
//! a message on a main-thread stack overflow. Without it such an overflow
//! still ends the process (SIGSEGV on the kernel's guard gap), just
//! without the message. What else std's start-up does that matters here is
//! done below: the standard descriptors are made valid, SIGPIPE is
//! ignored, a panic ends the process with status 101, stdout is flushed.
//! `std::env::args` needs none of it (glibc passes the arguments to std's
//! initialiser).

#![no_main]

use std::ffi::{c_char, c_int};
use std::io::Write;
use std::process::ExitCode;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    standard_descriptors();
    // SAFETY: plain libc call, before any other thread exists. As std does:
    // a write to a closed connection is an error to handle, not a signal
    // that kills the process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let status =
        match std::panic::catch_unwind(|| cloudrotate::plugin::run(cloudrotate::engine::factory)) {
            Ok(code) if code == ExitCode::SUCCESS => 0,
            Ok(_) => 1,
            // The panic message is already on stderr.
            Err(_) => 101,
        };
    let _ = std::io::stdout().flush();
    status
}

/// Opens /dev/null on any of descriptors 0 to 2 that is closed, as std's
/// start-up does: otherwise the first file or socket we open would take
/// its number, and the handshake line or a log line would go into it.
fn standard_descriptors() {
    for fd in 0..=2 {
        // SAFETY: fcntl(F_GETFD) on a descriptor number only reads its flags.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        // SAFETY: open(2) with a constant NUL-terminated path; the lowest
        // free descriptor, `fd` itself, is what it returns.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != fd {
            std::process::abort();
        }
    }
}
