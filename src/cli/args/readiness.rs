//! The readiness flags of SPEC §13: `--ready-timeout` and `--health-tcp`, flattened into
//! `RunArgs` (kept apart so that `args.rs` stays readable).

use std::time::Duration;

use clap::Args;

use super::heading;
use crate::base::values::{parse_health_tcp, parse_nonzero_duration, HealthTcp};

/// When a child counts as ready, and how long it may take.
#[derive(Debug, Args)]
pub struct ReadinessArgs {
    /// Stop a child not ready DUR after its start [default: off]
    ///
    /// Ready means READY=1 with --notify, else the first passing health check. A child not
    /// ready in time gets a crash record with reason 'start-timeout', is stopped (stop signal,
    /// --stop-timeout, SIGKILL) and the policy decides, as for an unhealthy child. Needs
    /// --notify or a health check. Accepts a duration above 0: 30s, 2m.
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration, help_heading = heading::MONITORS)]
    pub ready_timeout: Option<Duration>,

    /// Health check: a TCP connect to HOST:PORT [default: none]
    ///
    /// Connected within --health-timeout means healthy; the connection is closed at once. The
    /// host is resolved once at start; a refused address gives way to the next (localhost:
    /// ::1, then 127.0.0.1). Accepts HOST:PORT, e.g. 127.0.0.1:5432, localhost:6379,
    /// [::1]:8080.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_health_tcp, conflicts_with_all = ["health_cmd", "health_url"], help_heading = heading::HEALTH)]
    pub health_tcp: Option<HealthTcp>,
}
