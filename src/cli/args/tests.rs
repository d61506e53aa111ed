use super::*;

#[test]
fn a_run_and_a_subcommand_parse() {
    let cli = Cli::try_parse_from(["restartd", "--delay", "50ms", "--", "sleep", "1"]).unwrap();
    assert!(cli.subcommand.is_none());
    assert_eq!(cli.run.command, ["sleep", "1"]);
    assert_eq!(cli.run.delay, Duration::from_millis(50));
    let cli = Cli::try_parse_from(["restartd", "status", "api", "--json"]).unwrap();
    assert!(matches!(
        cli.subcommand,
        Some(Sub::Status { json: true, .. })
    ));
    // A program named like a subcommand runs after --.
    let cli = Cli::try_parse_from(["restartd", "--", "status"]).unwrap();
    assert_eq!(cli.run.command, ["status"]);
}

#[test]
fn every_policy_and_log_format_parses_to_itself() {
    for policy in RestartPolicy::ALL {
        let argv = ["restartd", "--restart", policy.as_str(), "--", "true"];
        assert_eq!(Cli::try_parse_from(argv).unwrap().run.restart, policy);
    }
    for format in LogFormat::ALL {
        let argv = ["restartd", "--log-format", format.as_str(), "--", "true"];
        assert_eq!(Cli::try_parse_from(argv).unwrap().run.log_format, format);
    }
}

#[test]
fn bad_values_name_the_flag() {
    let err = Cli::try_parse_from(["restartd", "--delay", "10x", "--", "true"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(
        text.contains("invalid value '10x' for '--delay <DUR>': invalid duration '10x'"),
        "{text}"
    );
}
