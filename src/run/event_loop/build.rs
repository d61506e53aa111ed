//! How the loop is built: the parts (`Family`, `Monitors`, `Recorder`, the control socket,
//! the `--socket`s, `observe`) set up around an acquired instance. Nothing starts here.

use std::time::{Instant, SystemTime};

use anyhow::Context;

use crate::monitors::notify::NotifySocket;
use crate::observe::Observe;
use crate::process::logfile::LogFile;
use crate::process::output::Output;
use crate::process::procs;
use crate::process::signals::{Inherited, SignalPipe};
use crate::process::sink::Sink;
use crate::records::crashlog::CrashLog;
use crate::records::instance::Instance;
use crate::records::known::Known;
use crate::records::state::StateWriter;
use crate::run::control::{self};
use crate::run::envfiles::EnvFiles;
use crate::run::family::Family;
use crate::run::lineage::Lineage;
use crate::run::log::Logger;
use crate::run::monitors::Monitors;
use crate::run::previous;
use crate::run::recorder::Recorder;
use crate::supervise::config::Config;
use crate::supervise::machine::Machine;

use super::{second, Ready, Supervisor};

impl Supervisor {
    /// Sets up everything around an acquired instance; starts nothing yet.
    pub fn new(
        cfg: Config,
        instance: Instance,
        signals: SignalPipe,
        inherited: Inherited,
    ) -> anyhow::Result<Supervisor> {
        let stderr = Sink::shared_stderr();
        let log = Logger::new(&cfg.name, cfg.verbosity, cfg.log_format, stderr.clone());
        let now = SystemTime::now();
        let (window, restarts, previous) = previous::previous_run(&cfg, &instance, &log, now);
        let mut writer = StateWriter::new(&instance.dir)
            .with_context(|| format!("unable to open {}", instance.dir.display()))?;
        if let Some(previous) = &previous {
            previous::stop_strays(&cfg, previous, &log);
            writer.on_disk(previous);
        }
        // After the strays, which may still hold the port.
        let listeners =
            crate::process::sockets::Listeners::bind(&cfg.sockets).map_err(anyhow::Error::msg)?;
        let control = control::Server::bind(&instance.dir).with_context(|| {
            format!(
                "unable to listen on {}",
                instance
                    .dir
                    .join(crate::records::instance::CONTROL)
                    .display()
            )
        })?;
        let scheduled = previous.as_ref().map_or(0, |p| p.scheduled_restarts);
        let machine =
            Machine::new(cfg.settings.clone(), window, restarts).with_scheduled_restarts(scheduled);
        let observe = Observe::new(&cfg, &instance.dir)?;
        if let Some(url) = observe.as_ref().and_then(Observe::url) {
            log.info(&format!("serving {url} (metrics at {url}metrics)"));
        }
        let notify = match cfg.notify {
            true => Some(NotifySocket::bind(&instance.dir).with_context(|| {
                format!(
                    "unable to create the notify socket in {}",
                    instance.dir.display()
                )
            })?),
            false => None,
        };
        let monitors =
            Monitors::new(&cfg, notify, inherited, Instant::now()).map_err(anyhow::Error::msg)?;
        let output = Output::new(cfg.log_file.clone().map(LogFile::new), stderr);
        let family = Family::new(output);
        let (known, problem) = Known::load(&instance.dir);
        if let Some(problem) = problem {
            log.warn(&problem);
        }
        let mut recorder = Recorder::new(
            cfg.clone(),
            CrashLog::new(&instance.dir),
            known,
            writer,
            inherited,
            now,
        );
        recorder.sockets = second::sockets_json(&listeners);
        for socket in &recorder.sockets {
            log.info(&format!(
                "holding {} on fd {} ({})",
                socket.address, socket.fd, socket.name
            ));
        }
        let marker = format!("RESTARTD_NAME={}", cfg.name).into_bytes();
        let env_files = EnvFiles::new(cfg.env_files.clone(), cfg.env.clone());
        let seed = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Ok(Supervisor {
            cfg,
            log,
            machine,
            _instance: instance,
            family,
            monitors,
            recorder,
            control,
            signals,
            inherited,
            observe,
            ready: Ready::default(),
            subreaper: procs::is_subreaper(),
            reap_first: true,
            // As PID 1 (of a container) restartd adopts every orphan, not only its child's.
            lineage: Lineage::new(std::process::id() == 1, marker),
            trimmed: false,
            env_files,
            rng: seed | 1,
            listeners,
        })
    }
}
