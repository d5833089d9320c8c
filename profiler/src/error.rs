//! What can go wrong, as one line a user can act on: each message names the
//! problem and the fix.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("flameprof needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo")]
    NotPrivileged,
    #[error("no process with PID {0}: check the PID with `ps -p {0}`")]
    NoSuchProcess(u32),
    #[error("this kernel lacks {feature}: {hint}")]
    KernelFeature { feature: String, hint: String },
    #[error("cannot write {}: {source}; pick a writable path with -o", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write an SVG to a terminal: redirect stdout (`> out.svg`) or use -o FILE")]
    SvgToTerminal,
    #[error("cannot start `{command}`: {source}; check the command name and that it is executable")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("loading the BPF programs failed ({context}): {detail}")]
    Bpf { context: &'static str, detail: String },
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// A BPF failure, with every cause of the chain on one line.
    pub fn bpf(context: &'static str, error: impl std::error::Error) -> Self {
        let mut detail = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::Bpf { context, detail }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
