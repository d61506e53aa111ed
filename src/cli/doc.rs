//! The documented command line: `command()` is `args::Cli` with `--help`'s epilogue, and the
//! manual page and the shell completions are rendered from it.
//!
//! The options come from clap (`clap_mangen`, `clap_complete`); the sections clap cannot know
//! (DESCRIPTION, the restart table, SIGNALS, EXIT STATUS, FILES, ENVIRONMENT, JSON OUTPUT,
//! EXAMPLES, SEE ALSO) are written here, once, from the tables in `doc/text.rs`, which
//! `--help` renders too. The output depends on nothing but the code: no date, no host, so the
//! copies committed under `man/` and `completions/` can be compared byte for byte
//! (`.ci/regen-docs` rewrites them).

mod files_text;
mod sockets_text;
mod systemd;
mod text;

use std::io::{self, Write};

use clap_mangen::roff::{bold, roman, Inline, Roff};

use crate::cli::args::{Cli, HELP_WIDTH};
use crate::supervise::policy::RestartPolicy;

/// The shells `restartd completions` knows, as clap_complete spells them.
pub use clap_complete::Shell;

/// The whole command line, with `--help`'s epilogue (examples, exit statuses), which is built
/// from the manual's text. Building it costs more than parsing a run's flags, so `cli::parse`
/// uses it only when the long help may be printed; everything that renders help (man page,
/// completions, tests) uses this.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().after_long_help(after_long_help())
}

/// `--help`'s epilogue: examples, exit statuses, files; plain text for a terminal.
fn after_long_help() -> String {
    let mut out = String::from("Examples:\n");
    for (what, command) in text::HELP_EXAMPLES {
        out.push_str(&format!("  # {what}\n  {command}\n"));
    }
    out.push_str("\nExit status of restartd -- COMMAND:\n");
    let width = text::EXIT_STATUS
        .iter()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(0);
    for (status, when) in text::EXIT_STATUS {
        let head = format!("  {status:<width$}  ");
        out.push_str(&wrap(&head, &plain(when), HELP_WIDTH));
    }
    out.push_str(&format!(
        "\nFiles: STATE_DIR/NAME/state.json, crashes.jsonl, lock (see --state-dir).\n\
         'restartd man' prints the manual: the restart table, signals, every file and\n\
         JSON field. Version {}.",
        env!("CARGO_PKG_VERSION")
    ));
    out
}

/// Writes the manual page (roff) to `out`.
pub fn man(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = command();
    cmd.build();
    let page = clap_mangen::Man::new(cmd.clone());
    // tbl(1) lays out the tables: man(1) runs it for a page whose first line says so. The
    // title line is written here: clap_mangen drops an empty date, which shifts the fields.
    writeln!(out, "'\\\" t")?;
    writeln!(
        out,
        ".TH RESTARTD 1 \"\" \"restartd {}\" \"User Commands\"",
        env!("CARGO_PKG_VERSION")
    )?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;

    let mut roff = Roff::default();
    description(&mut roff);
    roff.to_writer(out)?;

    out.write_all(&options(&page, &cmd)?)?;

    let mut roff = Roff::default();
    subcommands(&mut roff, &cmd);
    restarts(&mut roff);
    signals(&mut roff);
    section(&mut roff, "SOCKETS AND RELOAD");
    for p in sockets_text::SOCKETS {
        para(&mut roff, p);
    }
    exit_status(&mut roff);
    files(&mut roff);
    environment(&mut roff);
    json_output(&mut roff);
    under_systemd(&mut roff);
    examples(&mut roff);
    section(&mut roff, "SEE ALSO");
    para(&mut roff, text::SEE_ALSO);
    section(&mut roff, "VERSION");
    para(&mut roff, concat!("restartd ", env!("CARGO_PKG_VERSION")));
    roff.to_writer(out)
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut command(), "restartd", out);
}

/// clap_mangen's OPTIONS, with each `--help` heading as a subsection instead of a section.
fn options(page: &clap_mangen::Man, cmd: &clap::Command) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    page.render_options_section(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let headings: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_help_heading().map(String::from))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let heading = line.strip_prefix(".SH ").and_then(|h| {
            let h = h.trim_matches('"');
            headings.iter().find(|x| x.to_uppercase() == h)
        });
        match heading {
            Some(h) => out.push_str(&format!(".SS \"{h}\"\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out.into_bytes())
}

fn description(roff: &mut Roff) {
    section(roff, "DESCRIPTION");
    for p in text::DESCRIPTION {
        para(roff, p);
    }
    for (i, step) in text::WHAT_IT_DOES.iter().enumerate() {
        roff.control("IP", [format!("{}.", i + 1).as_str(), "4"]);
        roff.text(inline(step));
    }
    para(roff, text::VALUES);
}

/// Each subcommand: a synopsis spelled out flag by flag, its long about, and its options.
fn subcommands(roff: &mut Roff, cmd: &clap::Command) {
    section(roff, "SUBCOMMANDS");
    para(roff, text::SUBCOMMANDS_INTRO);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut synopsis = vec![bold(format!("restartd {}", sub.get_name()))];
        for arg in sub.get_arguments().filter(|a| !is_builtin(a)) {
            synopsis.push(roman(format!(" {}", synopsis_word(arg))));
        }
        roff.control("TP", []);
        roff.text(synopsis);
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        for (i, p) in about.split("\n\n").enumerate() {
            if i > 0 {
                roff.control("IP", []);
            }
            roff.text([roman(p.replace('\n', " "))]);
        }
        // --state-dir is the same everywhere: the introduction says so once.
        let args: Vec<&clap::Arg> = sub
            .get_arguments()
            .filter(|a| !is_builtin(a) && a.get_id() != "state_dir")
            .collect();
        if !args.is_empty() {
            roff.control("RS", []);
            for arg in args {
                let word = synopsis_word(arg);
                let mut head = vec![bold(word.trim_matches(['[', ']']).to_string())];
                let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
                match arg.get_default_values().first() {
                    Some(default) if takes_value => {
                        head.push(roman(format!(" [default: {}]", default.to_string_lossy())))
                    }
                    _ => {}
                }
                roff.control("TP", []);
                roff.text(head);
                let help = arg
                    .get_long_help()
                    .or_else(|| arg.get_help())
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let mut body = Vec::new();
                for (i, p) in help.split("\n\n").enumerate() {
                    if i > 0 {
                        body.push(Inline::LineBreak);
                    }
                    body.push(roman(p.replace('\n', " ")));
                }
                let values: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect();
                if !values.is_empty() {
                    body.push(Inline::LineBreak);
                    body.push(roman(format!("One of: {}.", values.join(", "))));
                }
                roff.text(body);
            }
            roff.control("RE", []);
        }
    }
}

fn is_builtin(arg: &clap::Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// `NAME`, `[NAME]`, `[--json]`, `[--since DUR]`, `[-n N]`, `SHELL`.
fn synopsis_word(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    if arg.is_positional() {
        return if arg.is_required_set() {
            value
        } else {
            format!("[{value}]")
        };
    }
    let flag = match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => value.clone(),
    };
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    if takes_value {
        format!("[{flag} {value}]")
    } else {
        format!("[{flag}]")
    }
}

/// The restart table, from `policy::restarts` itself: a policy a row, a cause a column.
fn restarts(roff: &mut Roff) {
    section(roff, "WHEN IT RESTARTS");
    para(roff, text::RESTART_INTRO);
    let mut head = vec!["policy".to_string()];
    head.extend(text::CAUSES.iter().map(|(short, _, _)| short.to_string()));
    let rows: Vec<Vec<String>> = RestartPolicy::ALL
        .iter()
        .map(|&policy| {
            let mut row = vec![policy.as_str().to_string()];
            row.extend(text::CAUSES.iter().map(|&(_, _, cause)| {
                if crate::supervise::policy::restarts(policy, cause) {
                    "X"
                } else {
                    ""
                }
                .to_string()
            }));
            row
        })
        .collect();
    table(roff, "l c c c c c", &head, &rows, false);
    roff.control("sp", []);
    roff.text(inline(text::CAUSES_INTRO));
    for (short, long, _) in text::CAUSES {
        item(roff, short, long);
    }
    for p in text::RESTART_RULES {
        para(roff, p);
    }
}

fn signals(roff: &mut Roff) {
    section(roff, "SIGNALS");
    for (signals, what) in text::SIGNALS {
        item(roff, signals, what);
    }
    para(roff, text::PROCESSES);
    para(roff, text::STALLED_OUTPUT);
}

fn exit_status(roff: &mut Roff) {
    section(roff, "EXIT STATUS");
    para(roff, "Of `restartd [OPTIONS] -- COMMAND`:");
    let head = ["status".to_string(), "when".to_string()];
    table(roff, "l lx", &head, &pairs(text::EXIT_STATUS), true);
    roff.control("sp", []);
    roff.text(inline("Of the subcommands:"));
    table(roff, "l lx", &head, &pairs(text::SUBCOMMAND_STATUS), true);
}

fn pairs(table: &[(&str, &str)]) -> Vec<Vec<String>> {
    table
        .iter()
        .map(|(a, b)| vec![a.to_string(), b.to_string()])
        .collect()
}

fn files(roff: &mut Roff) {
    section(roff, "FILES");
    para(roff, files_text::FILES_INTRO);
    for (file, what) in files_text::FILES {
        item(roff, file, what);
    }
    subsection(roff, "state.json fields");
    for (field, what) in files_text::STATE_FIELDS {
        item(roff, field, what);
    }
    subsection(roff, "Crash record fields");
    para(roff, files_text::CRASH_INTRO);
    for (field, what) in files_text::CRASH_FIELDS {
        item(roff, field, what);
    }
}

fn environment(roff: &mut Roff) {
    section(roff, "ENVIRONMENT");
    para(roff, "restartd reads:");
    for (var, what) in text::ENV_READ {
        item(roff, var, what);
    }
    para(roff, text::ENV_CHILD_INTRO);
    for (var, what) in text::ENV_CHILD {
        item(roff, var, what);
    }
    para(roff, text::ENV_HOOKS);
}

fn json_output(roff: &mut Roff) {
    section(roff, "JSON OUTPUT");
    for (what, schema) in text::JSON_SCHEMAS {
        item(roff, what, schema);
    }
    subsection(roff, "Log lines");
    para(roff, text::LOG_TEXT);
    para(roff, text::LOG_JSON_INTRO);
    for (field, what) in text::LOG_FIELDS {
        item(roff, field, what);
    }
}

fn under_systemd(roff: &mut Roff) {
    section(roff, "UNDER SYSTEMD");
    para(roff, systemd::READINESS);
    para(roff, systemd::UNIT_INTRO);
    for (line, why) in systemd::UNIT_LINES {
        item(roff, line, why);
    }
    para(roff, systemd::NOTIFY_INTRO);
    for (message, what) in systemd::NOTIFY_MESSAGES {
        item(roff, message, what);
    }
}

fn examples(roff: &mut Roff) {
    section(roff, "EXAMPLES");
    for (title, intro, code) in text::EXAMPLES {
        subsection(roff, title);
        para(roff, intro);
        code_block(roff, code);
    }
}

fn section(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

fn subsection(roff: &mut Roff, title: &str) {
    roff.control("SS", [title]);
}

fn para(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.text(inline(text));
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text(inline(&format!("`{tag}`")));
    roff.text(inline(text));
}

fn code_block(roff: &mut Roff, code: &str) {
    roff.control("PP", []);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in code.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
}

/// A tbl(1) table with a bold head row; with `wrap`, the last column's cells are text blocks,
/// so long ones wrap.
fn table(roff: &mut Roff, format: &str, head: &[String], rows: &[Vec<String>], wrap: bool) {
    roff.control("TS", []);
    roff.text([roman("allbox;")]);
    let bold_head: Vec<String> = format
        .split(' ')
        .map(|col| format!("{}b", col.trim_end_matches('x')))
        .collect();
    roff.text([roman(bold_head.join(" "))]);
    roff.text([roman(format!("{format}."))]);
    for row in std::iter::once(head).chain(rows.iter().map(|r| &r[..])) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let cell = plain(cell);
                if wrap && i + 1 == row.len() {
                    format!("T{{\n{cell}\nT}}")
                } else {
                    cell
                }
            })
            .collect();
        roff.text([roman(cells.join("\t"))]);
    }
    roff.control("TE", []);
}

/// Text with `code` spans: the spans in bold.
fn inline(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(
            |(i, part)| {
                if i % 2 == 1 {
                    bold(part)
                } else {
                    roman(part)
                }
            },
        )
        .collect()
}

/// `head` then `text` wrapped at `width` columns, continuation lines indented under `text`.
fn wrap(head: &str, text: &str, width: usize) -> String {
    let indent = " ".repeat(head.len());
    let mut out = String::new();
    let mut line = head.to_string();
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Text with the `code` marks dropped, for a terminal.
fn plain(text: &str) -> String {
    text.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        let mut buf = Vec::new();
        man(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn verify_cli() {
        command().debug_assert();
    }

    #[test]
    fn the_page_has_every_section_and_no_date() {
        let page = page();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "SUBCOMMANDS",
            "\"WHEN IT RESTARTS\"",
            "SIGNALS",
            "\"EXIT STATUS\"",
            "FILES",
            "ENVIRONMENT",
            "\"JSON OUTPUT\"",
            "\"UNDER SYSTEMD\"",
            "EXAMPLES",
            "\"SEE ALSO\"",
        ] {
            assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
        }
        assert!(page.starts_with("'\\\" t\n"), "tbl marker first");
        let title = page.lines().find(|l| l.starts_with(".TH")).unwrap();
        assert_eq!(
            title,
            format!(
                ".TH RESTARTD 1 \"\" \"restartd {}\" \"User Commands\"",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(page, super::tests::page(), "deterministic");
    }

    #[test]
    fn every_run_option_and_subcommand_is_in_the_page() {
        let page = page().replace("\\-", "-");
        for arg in command().get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(page.contains(&format!("--{long}")), "--{long}");
            }
        }
        for sub in command().get_subcommands() {
            if sub.get_name() != "help" {
                assert!(
                    page.contains(&format!("restartd {}", sub.get_name())),
                    "{}",
                    sub.get_name()
                );
            }
        }
        // Headings became subsections of OPTIONS.
        assert!(page.contains(".SS \"Health checks\""));
        assert!(!page.contains(".SH \"HEALTH CHECKS\""));
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("  0  ", "aa bb cc", 10), "  0  aa bb\n     cc\n");
        assert_eq!(wrap("  0  ", "a", 79), "  0  a\n");
    }

    #[test]
    fn markup() {
        assert_eq!(inline("a `b` c"), [roman("a "), bold("b"), roman(" c")]);
        assert_eq!(plain("a `b` c"), "a b c");
    }

    #[test]
    fn completions_name_every_subcommand() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut buf = Vec::new();
            completions(shell, &mut buf);
            let text = String::from_utf8(buf).unwrap();
            for word in ["crashes", "max-restarts", "completions"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
            // The shells that complete values offer the policies.
            if matches!(shell, Shell::Bash | Shell::Zsh | Shell::Fish) {
                assert!(text.contains("on-watchdog"), "{shell}: on-watchdog");
            }
        }
    }
}
