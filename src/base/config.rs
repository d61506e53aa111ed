//! The configuration the parts below the command line run with: the health checks, the log
//! file, and how restartd writes its own messages.
//!
//! Plain data, filled in by `cli::config` from the flags; each part takes its piece and nothing
//! more. The whole of a run's configuration is `supervise::config::Config`, which also holds the
//! machine's settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::base::values::{HealthTcp, HealthUrl};

/// How much restartd says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// What a health check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `--health-cmd`, run with `sh -c`.
    Command(String),
    /// `--health-url`.
    Http(HealthUrl),
    /// `--health-tcp`: a connect and close.
    Tcp(HealthTcp),
}

/// The `--health-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// `--log-file`, `--log-max-size`, `--log-keep`, `--log-timestamps`, `--log-max-age`,
/// `--log-compress`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFileConfig {
    pub path: PathBuf,
    pub max_size: u64,
    pub keep: u32,
    /// Start each line with its UTC time.
    pub timestamps: bool,
    /// Delete rotated files older than this.
    pub max_age: Option<Duration>,
    /// Gzip rotated files.
    pub compress: bool,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `12:03:44 restartd[NAME]: …` lines (or `<6>restartd[NAME]: …` for the journal).
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormat {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// The spelling of the flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The `--listen-token-file` token: every `--listen` request must carry it as
/// `Authorization: Bearer TOKEN`. Its `Debug` does not show it, so no message or dump can.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(<{} bytes>)", self.0.len())
    }
}

impl Token {
    /// The longest token: with the header around it, it still fits a request's 8 KiB.
    pub const MAX_LEN: usize = 4096;

    /// The token of a token file's bytes: its first line, without the spaces around it; at
    /// most `MAX_LEN` visible ASCII characters. `Err` says what is wrong with the line.
    pub fn from_file_text(text: &[u8]) -> Result<Token, String> {
        let line = text.split(|&b| b == b'\n').next().unwrap_or(b"");
        let line = line.trim_ascii();
        if line.is_empty() {
            return Err("the first line holds no token; write the token on it".into());
        }
        if line.len() > Token::MAX_LEN {
            return Err(format!(
                "the token is over {} characters; use a shorter one",
                Token::MAX_LEN
            ));
        }
        match std::str::from_utf8(line) {
            Ok(token) if line.iter().all(|b| b.is_ascii_graphic()) => Ok(Token(token.into())),
            _ => Err(
                "the token must be visible ASCII characters without spaces, e.g. the output of 'openssl rand -hex 32'"
                    .into(),
            ),
        }
    }

    /// Whether `given` is the token, in a time that depends on the token's length only, never
    /// on how much of `given` matches (a timing side channel would let a client guess it byte
    /// by byte).
    pub fn matches(&self, given: &str) -> bool {
        let (want, given) = (self.0.as_bytes(), given.as_bytes());
        let mut diff = u8::from(want.len() != given.len());
        for (i, &w) in want.iter().enumerate() {
            diff |= w ^ given.get(i).copied().unwrap_or(!w);
        }
        std::hint::black_box(diff) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_first_line_of_visible_ascii() {
        for (text, want) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret", "s3cret"),
            (b"  s3cret \r\nsecond line\n", "s3cret"),
            (b"a+b/c=\n", "a+b/c="),
        ] {
            assert_eq!(
                Token::from_file_text(text),
                Ok(Token(want.into())),
                "{text:?}"
            );
        }
        let empty = Err("the first line holds no token; write the token on it".to_string());
        for text in [&b""[..], b"\n", b"  \r\n", b"\ns3cret\n"] {
            assert_eq!(Token::from_file_text(text), empty, "{text:?}");
        }
        let chars = Err("the token must be visible ASCII characters without spaces, e.g. the output of 'openssl rand -hex 32'".to_string());
        for text in [
            &b"two words\n"[..],
            b"tab\there",
            b"caf\xc3\xa9",
            b"\xff\xfe",
        ] {
            assert_eq!(Token::from_file_text(text), chars, "{text:?}");
        }
        let long = "x".repeat(Token::MAX_LEN + 1);
        assert_eq!(
            Token::from_file_text(long.as_bytes()),
            Err("the token is over 4096 characters; use a shorter one".into())
        );
        assert!(Token::from_file_text(&long.as_bytes()[1..]).is_ok());
        assert_eq!(
            format!("{:?}", Token::from_file_text(b"s3cret").unwrap()),
            "Token(<6 bytes>)"
        );
    }

    #[test]
    fn a_token_matches_itself_only() {
        let token = Token::from_file_text(b"s3cret").unwrap();
        assert!(token.matches("s3cret"));
        for other in [
            "", "s", "s3cre", "s3cret ", "s3cretx", "S3cret", "t3cret", "s3cres",
        ] {
            assert!(!token.matches(other), "{other:?}");
        }
        // A byte that complements the token's own cannot stand in for a missing one.
        let one = Token::from_file_text(b"a").unwrap();
        assert!(!one.matches(""));
    }
}
