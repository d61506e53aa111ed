# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_restartd_global_optspecs
    string join \n n/name= state-dir= restart= max-restarts= window= delay= backoff-factor= max-delay= jitter= min-uptime= success-exit-codes= no-restart-exit-codes= force-restart-exit-codes= stop-signal= stop-timeout= health-cmd= health-url= health-interval= health-timeout= health-retries= health-start-period= notify watchdog= max-memory= log-file= log-max-size= log-keep= log-timestamps log-max-age= log-compress tail-lines= on-crash= on-give-up= alert-limit= reset env-file= max-runtime= max-runtime-jitter= q/quiet v/verbose log-format= label= listen= listen-remote listen-token-file= metrics-file= ready-timeout= health-tcp= h/help V/version
end

function __fish_restartd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_restartd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_restartd_using_subcommand
    set -l cmd (__fish_restartd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c restartd -n "__fish_restartd_needs_command" -s n -l name -d 'Instance name [default: basename of COMMAND]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_needs_command" -l restart -d 'When to restart (systemd\'s Restart=)' -r -f -a "no\t'Never restart'
always\t'Restart after every end'
on-success\t'Only after a clean end'
on-failure\t'After an unclean exit code or signal, unhealthy, memory, watchdog'
on-abnormal\t'After an unclean signal, unhealthy, memory, watchdog'
on-abort\t'Only after an unclean signal'
on-watchdog\t'Only after a watchdog timeout'"
complete -c restartd -n "__fish_restartd_needs_command" -l max-restarts -d 'Give up past N restarts in --window' -r
complete -c restartd -n "__fish_restartd_needs_command" -l window -d 'The trailing window of --max-restarts' -r
complete -c restartd -n "__fish_restartd_needs_command" -l delay -d 'First delay of a crash streak' -r
complete -c restartd -n "__fish_restartd_needs_command" -l backoff-factor -d 'Each further delay is F times longer' -r
complete -c restartd -n "__fish_restartd_needs_command" -l max-delay -d 'Cap on the restart delay' -r
complete -c restartd -n "__fish_restartd_needs_command" -l jitter -d 'Randomise each delay by +-FRACTION' -r
complete -c restartd -n "__fish_restartd_needs_command" -l min-uptime -d 'A run this long ends the streak' -r
complete -c restartd -n "__fish_restartd_needs_command" -l success-exit-codes -d 'Codes that count as a clean exit besides 0 [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l no-restart-exit-codes -d 'Codes that never restart, whatever the policy [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l force-restart-exit-codes -d 'Codes that always restart, whatever the policy [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l stop-signal -d 'Signal for stopping the child' -r
complete -c restartd -n "__fish_restartd_needs_command" -l stop-timeout -d 'SIGKILL the group DUR after a stop' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-cmd -d 'Health check command, run with sh -c [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-url -d 'Health check URL; 2xx or 3xx means healthy [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-interval -d 'Time between health checks' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-timeout -d 'A health check slower than this fails' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-retries -d 'Failed checks in a row that make the child unhealthy' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-start-period -d 'Failed checks this soon after a start do not count' -r
complete -c restartd -n "__fish_restartd_needs_command" -l watchdog -d 'Require WATCHDOG=1 this often [default: off]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l max-memory -d 'Restart past this much RSS [default: off]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l log-file -d 'Append the child\'s output to PATH [default: none]' -r -F
complete -c restartd -n "__fish_restartd_needs_command" -l log-max-size -d 'Rotate the log file past this size' -r
complete -c restartd -n "__fish_restartd_needs_command" -l log-keep -d 'Rotated files kept, PATH.1 ... PATH.N' -r
complete -c restartd -n "__fish_restartd_needs_command" -l log-max-age -d 'Delete rotated log files older than DUR [default: off]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l tail-lines -d 'Stderr lines a crash record keeps' -r
complete -c restartd -n "__fish_restartd_needs_command" -l on-crash -d 'Hook run after every crash record [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l on-give-up -d 'Hook run when restartd gives up [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l alert-limit -d 'At most N --on-crash runs per DUR' -r
complete -c restartd -n "__fish_restartd_needs_command" -l env-file -d 'Add KEY=VALUE lines of PATH to the child\'s environment [default: none]' -r -F
complete -c restartd -n "__fish_restartd_needs_command" -l max-runtime -d 'Restart the child gracefully after it has run DUR [default: off]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l max-runtime-jitter -d 'Add a random 0...DUR to each --max-runtime' -r
complete -c restartd -n "__fish_restartd_needs_command" -l log-format -d 'restartd\'s own messages as text or json' -r -f -a "text\t'Lines for people and the journal'
json\t'One JSON object a line, for log shippers'"
complete -c restartd -n "__fish_restartd_needs_command" -l label -d 'Attach KEY=VALUE to crash records, state and metrics [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l listen -d 'Serve metrics, status, crashes and a dashboard on ADDR:PORT [default: off]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l listen-token-file -d 'Require a bearer token from every --listen request [default: none]' -r -F
complete -c restartd -n "__fish_restartd_needs_command" -l metrics-file -d 'Keep Prometheus text metrics in PATH [default: none]' -r -F
complete -c restartd -n "__fish_restartd_needs_command" -l ready-timeout -d 'Stop a child not ready DUR after its start [default: off]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l health-tcp -d 'Health check: a TCP connect to HOST:PORT [default: none]' -r
complete -c restartd -n "__fish_restartd_needs_command" -l notify -d 'Give the child an sd_notify socket [default: off]'
complete -c restartd -n "__fish_restartd_needs_command" -l log-timestamps -d 'Start every line of the log file with its UTC time [default: off]'
complete -c restartd -n "__fish_restartd_needs_command" -l log-compress -d 'Gzip rotated log files: PATH.1.gz ... PATH.N.gz [default: off]'
complete -c restartd -n "__fish_restartd_needs_command" -l reset -d 'Forget a previous run\'s restart window'
complete -c restartd -n "__fish_restartd_needs_command" -s q -l quiet -d 'Print only warnings and errors'
complete -c restartd -n "__fish_restartd_needs_command" -s v -l verbose -d 'Also print starts, signals and reaped orphans'
complete -c restartd -n "__fish_restartd_needs_command" -l listen-remote -d 'Allow --listen on a non-loopback address'
complete -c restartd -n "__fish_restartd_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_needs_command" -s V -l version -d 'Print version'
complete -c restartd -n "__fish_restartd_needs_command" -a "status" -d 'Show the state of one instance, or of all'
complete -c restartd -n "__fish_restartd_needs_command" -a "list" -d 'List every instance in the state directory, a line each'
complete -c restartd -n "__fish_restartd_needs_command" -a "crashes" -d 'Show recent crash records, newest first'
complete -c restartd -n "__fish_restartd_needs_command" -a "reset" -d 'Clear an instance\'s restart window'
complete -c restartd -n "__fish_restartd_needs_command" -a "stop" -d 'Stop a running instance gracefully and wait until it has exited'
complete -c restartd -n "__fish_restartd_needs_command" -a "restart" -d 'Restart a running instance\'s child gracefully (no crash, no backoff)'
complete -c restartd -n "__fish_restartd_needs_command" -a "signal" -d 'Send a signal to a running instance\'s child process group'
complete -c restartd -n "__fish_restartd_needs_command" -a "metrics" -d 'Print an instance\'s metrics in the Prometheus text format'
complete -c restartd -n "__fish_restartd_needs_command" -a "logs" -d 'Print the last lines of an instance\'s --log-file, rotated files included'
complete -c restartd -n "__fish_restartd_needs_command" -a "completions" -d 'Print shell completions to stdout'
complete -c restartd -n "__fish_restartd_needs_command" -a "unit" -d 'Print a systemd unit that runs restartd with these options'
complete -c restartd -n "__fish_restartd_needs_command" -a "man" -d 'Print the manual page (roff) to stdout'
complete -c restartd -n "__fish_restartd_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c restartd -n "__fish_restartd_using_subcommand status" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand status" -l json -d 'Print JSON: an object for one instance, an array for all'
complete -c restartd -n "__fish_restartd_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand list" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand list" -l json -d 'Print a JSON array, as \'status --json\' without a name'
complete -c restartd -n "__fish_restartd_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -l since -d 'Only crashes in this trailing time [default: all]' -r
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -s n -d 'At most N records (0: all)' -r
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -l id -d 'One record in full, stack trace included [default: none]' -r
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -l fingerprint -d 'Only the records of one error [default: all]' -r
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -l stats -d 'Counts: last hour, last 24 h, total, by reason, error type and fingerprint'
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -l json -d 'Print JSON: records as JSON lines, --stats as one object'
complete -c restartd -n "__fish_restartd_using_subcommand crashes" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand reset" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand reset" -l crashes -d 'Also delete the crash history'
complete -c restartd -n "__fish_restartd_using_subcommand reset" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand stop" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand restart" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand signal" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand signal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand metrics" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand metrics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand logs" -s n -d 'The last N lines (0: all)' -r
complete -c restartd -n "__fish_restartd_using_subcommand logs" -l since -d 'Only lines of this trailing time [default: all]' -r
complete -c restartd -n "__fish_restartd_using_subcommand logs" -l state-dir -d 'Where instance directories live [default: see --help]' -r -F
complete -c restartd -n "__fish_restartd_using_subcommand logs" -s f -l follow -d 'Keep printing new lines, across rotations, until the instance stops'
complete -c restartd -n "__fish_restartd_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand unit" -l user -d 'Print a user unit (systemctl --user): WantedBy=default.target'
complete -c restartd -n "__fish_restartd_using_subcommand unit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "status" -d 'Show the state of one instance, or of all'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "list" -d 'List every instance in the state directory, a line each'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "crashes" -d 'Show recent crash records, newest first'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "reset" -d 'Clear an instance\'s restart window'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "stop" -d 'Stop a running instance gracefully and wait until it has exited'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "restart" -d 'Restart a running instance\'s child gracefully (no crash, no backoff)'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "signal" -d 'Send a signal to a running instance\'s child process group'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "metrics" -d 'Print an instance\'s metrics in the Prometheus text format'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "logs" -d 'Print the last lines of an instance\'s --log-file, rotated files included'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "completions" -d 'Print shell completions to stdout'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "unit" -d 'Print a systemd unit that runs restartd with these options'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "man" -d 'Print the manual page (roff) to stdout'
complete -c restartd -n "__fish_restartd_using_subcommand help; and not __fish_seen_subcommand_from status list crashes reset stop restart signal metrics logs completions unit man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
