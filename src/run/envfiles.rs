//! `--env-file` at run time: the files are read again before every start (SPEC §13). A read
//! that fails (the file is gone, a line is malformed) keeps the environment read last, is said
//! once until a read works again, and never stops the start. The first read is the command
//! line's, where a failure is a usage error (`main`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::base::envfile;

/// The env files and the environment they gave last.
pub struct EnvFiles {
    paths: Vec<PathBuf>,
    last: Vec<(OsString, OsString)>,
    failing: bool,
}

impl EnvFiles {
    /// `first` is what the command line read from `paths` at start.
    pub fn new(paths: Vec<PathBuf>, first: Vec<(OsString, OsString)>) -> EnvFiles {
        EnvFiles {
            paths,
            last: first,
            failing: false,
        }
    }

    /// Reads the files again; returns the variables for the next start, and a problem to
    /// report when this read failed and the one before did not.
    pub fn read(&mut self) -> (&[(OsString, OsString)], Option<String>) {
        if self.paths.is_empty() {
            return (&self.last, None);
        }
        let problem = match envfile::read_all(&self.paths) {
            Ok(env) => {
                self.last = env;
                self.failing = false;
                None
            }
            Err(why) if !self.failing => {
                self.failing = true;
                Some(format!(
                    "--env-file: {why}; starting with the environment read before (said once until the files read again)"
                ))
            }
            Err(_) => None,
        };
        (&self.last, problem)
    }

    /// Reads the files again and puts their variables in front of `own`, restartd's variables
    /// for the child, which win over them; a problem to report, as `read`.
    pub fn put_under(&mut self, own: &mut Vec<(OsString, OsString)>) -> Option<String> {
        let (files, problem) = self.read();
        let files: Vec<_> = files
            .iter()
            .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
            .cloned()
            .collect();
        own.splice(0..0, files);
        problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_keeps_the_last_environment_and_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "A=1\n").unwrap();
        let first = envfile::read_all(std::slice::from_ref(&path)).unwrap();
        let mut files = EnvFiles::new(vec![path.clone()], first);
        let a = |v: &str| vec![(OsString::from("A"), OsString::from(v))];
        std::fs::write(&path, "A=2\n").unwrap();
        assert_eq!(files.read(), (&a("2")[..], None));
        std::fs::write(&path, "A=3\nbroken\n").unwrap();
        let (env, problem) = files.read();
        assert_eq!(env, &a("2")[..]);
        let problem = problem.unwrap();
        assert!(
            problem.contains("env: line 2: expected KEY=VALUE"),
            "{problem}"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(files.read(), (&a("2")[..], None), "said once");
        std::fs::write(&path, "A=4\n").unwrap();
        assert_eq!(files.read(), (&a("4")[..], None));
        std::fs::remove_file(&path).unwrap();
        assert!(files.read().1.unwrap().contains("unable to read"));
    }
}
