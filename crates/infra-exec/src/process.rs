//! Running local programs (docker, debootstrap, ssh) with their output captured, and errors
//! that name the command and say what it printed.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// A local program that failed or could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program is not installed or cannot be executed.
    #[error("cannot run `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited with a failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line (no secrets are ever passed as arguments).
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines it printed on stderr.
        stderr: String,
    },
    /// It did not finish in time and was killed.
    #[error("`{command}` did not finish within {seconds} s")]
    TimedOut {
        /// The command line.
        command: String,
        /// The time limit.
        seconds: u64,
    },
}

/// What a finished program printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// Whether it exited with 0.
    pub success: bool,
    /// The exit status, as text.
    pub status: String,
    /// The command line that ran (no secrets are ever passed as arguments).
    pub command: String,
}

/// Runs `program args...`, feeding `stdin` if given, within `limit`. Never inherits the
/// terminal: stdin is closed (or the given bytes), stdout and stderr are captured.
pub async fn run<I, S>(
    program: &str,
    args: I,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Output, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command_line = describe(program, &args);
    let mut command = Command::new(program);
    command
        .args(&args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error means the program exited early; its status tells why.
        let _ = pipe.write_all(bytes).await;
        drop(pipe);
    }
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(result) => result.map_err(|source| ProcessError::Spawn {
            program: program.to_owned(),
            source,
        })?,
        Err(_) => {
            return Err(ProcessError::TimedOut {
                command: command_line,
                seconds: limit.as_secs(),
            });
        }
    };
    Ok(Output {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
        status: output.status.to_string(),
        command: command_line,
    })
}

/// Like [`run`], but a non-zero exit is an error carrying the end of stderr.
pub async fn check<I, S>(
    program: &str,
    args: I,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Output, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = run(program, args, stdin, limit).await?;
    if output.success {
        Ok(output)
    } else {
        Err(ProcessError::Failed {
            command: output.command.clone(),
            status: output.status.clone(),
            stderr: tail(&output.stderr, 6),
        })
    }
}

fn describe(program: &str, args: &[std::ffi::OsString]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// The last `lines` non-empty lines of `text`, joined.
pub fn tail(text: &str, lines: usize) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = kept.len().saturating_sub(lines);
    kept[start..].join("\n")
}
