//! Subcommands other than `sandbox`: each returns its text and `main` prints it, except the
//! interactive ones (`init`, `login`), which write as they go through [`write_out`].

/// `println!` for the interactive commands (`init`, `login`), through [`write_out`].
macro_rules! say {
    () => {
        $crate::commands::write_out("\n")
    };
    ($($arg:tt)*) => {
        $crate::commands::write_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod check;
pub mod init;
pub mod install_client;
pub mod login;
pub mod sandbox_seed;
pub mod tool_table;

/// Writes `text` to stdout for a person (never in stdio serve mode). A reader that stops
/// early (`| head`) closes the pipe: that is a normal end, so the process leaves quietly
/// instead of panicking as `print!` would.
pub fn write_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}
