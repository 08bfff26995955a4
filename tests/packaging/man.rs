//! The man page: `man/cosmount.1` is `man/cosmount.1.in` (hand-written
//! sections) with the parts clap knows filled in by clap_mangen (title,
//! name, synopsis, every option with its heading, the `serve` options,
//! version), so `--help` and the page cannot drift. The drift test fails
//! when the committed page differs from what the generator makes now;
//! regenerate it with
//!
//! ```text
//! UPDATE_MAN=1 cargo test man_page
//! ```

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use clap_mangen::Man;
use cosmount::cli::Cli;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/man/cosmount.1.in");
const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/man/cosmount.1");

/// Renders one clap_mangen section to text, without the `Aq` string
/// definition clap_mangen repeats in each (the title defines it once).
fn section(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).expect("render to memory");
    let text = String::from_utf8(out).expect("roff is UTF-8");
    text.lines()
        .filter(|l| !l.starts_with(".ie \\n(.g .ds Aq") && !l.starts_with(".el .ds Aq"))
        .map(|l| format!("{}\n", breakable(l)))
        .collect()
}

/// Lets troff break long words (URLs) after their slashes, so an 80-column
/// page does not warn that it cannot adjust the line.
fn breakable(line: &str) -> String {
    if line.starts_with('.') {
        return line.to_string();
    }
    let words: Vec<String> = line
        .split(' ')
        .map(|w| {
            if w.len() > 40 {
                w.replace('/', "/\\:")
            } else {
                w.to_string()
            }
        })
        .collect();
    words.join(" ")
}

/// `.TH` with the version as the source and no date (a date would make
/// the page change every day), the `Aq` string clap_mangen's text uses,
/// ragged-right text (lines holding only a long URL cannot be justified)
/// and no hyphenation (option names must stay whole).
fn title(command: &clap::Command) -> String {
    let version = command.get_version().unwrap_or_default();
    format!(
        ".TH COSMOUNT 1 \"\" \"cosmount {version}\" \"User Commands\"\n\
         .ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.ad l\n.nh\n.nr HY 0\n"
    )
}

/// The options of `man` with each clap help heading as a subsection of
/// the `.SH OPTIONS` that clap_mangen opens for the unheaded ones.
fn options(man: &Man) -> String {
    let mut out = String::new();
    for line in section(|w| man.render_options_section(w)).lines() {
        match line.strip_prefix(".SH ") {
            Some("OPTIONS") => out.push_str(".SH OPTIONS\n"),
            Some(heading) => {
                let heading = heading.trim_matches('"');
                let (first, rest) = heading.split_at(1);
                out.push_str(&format!(".SS {first}{}\n", rest.to_lowercase()));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The subcommands with their one-line help (clap_mangen would point at
/// a page per subcommand, which we do not ship).
fn subcommands(command: &clap::Command) -> String {
    let mut out = String::from(".SH COMMANDS\n");
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!(
            ".TP\n\\fBcosmount {}\\fR\n{}\n",
            sub.get_name(),
            about.replace('-', "\\-")
        ));
    }
    out
}

/// A section without its `.SH` line.
fn body(text: String) -> String {
    text.split_once('\n')
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The page the generator makes from the template and the clap definition.
pub fn render() -> String {
    let mut command = Cli::command();
    command.build();
    let serve = command
        .find_subcommand("serve")
        .expect("serve subcommand")
        .clone();
    let man = Man::new(command.clone());
    let serve_man = Man::new(serve);
    let generated = [
        ("title", title(&command)),
        ("name", section(|w| man.render_name_section(w))),
        ("synopsis", section(|w| man.render_synopsis_section(w))),
        ("options", options(&man)),
        ("subcommands", subcommands(&command)),
        (
            "serve-options",
            body(section(|w| serve_man.render_options_section(w))),
        ),
        ("version", section(|w| man.render_version_section(w))),
    ];
    let template = std::fs::read_to_string(TEMPLATE).expect("read man/cosmount.1.in");
    let mut page = String::from(
        ".\\\" Generated from man/cosmount.1.in and the clap definition in src/cli.rs.\n\
         .\\\" Do not edit: change those, then run `UPDATE_MAN=1 cargo test man_page`.\n",
    );
    for line in template.lines() {
        let marker = line
            .strip_prefix(".\\\" @")
            .and_then(|l| l.strip_suffix('@'));
        match marker {
            Some(name) => {
                let (_, text) = generated
                    .iter()
                    .find(|(n, _)| *n == name)
                    .unwrap_or_else(|| panic!("unknown marker @{name}@ in the template"));
                page.push_str(text);
            }
            // The template's own comments are not for the page.
            None if line.starts_with(".\\\"") => {}
            None => {
                page.push_str(line);
                page.push('\n');
            }
        }
    }
    page
}

#[test]
fn man_page_is_up_to_date() {
    let wanted = render();
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(PAGE, &wanted).expect("write man/cosmount.1");
        return;
    }
    let committed = std::fs::read_to_string(PAGE).unwrap_or_default();
    if committed != wanted {
        let line = committed
            .lines()
            .zip(wanted.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(wanted.lines().count()));
        panic!(
            "man/cosmount.1 is out of date with src/cli.rs or man/cosmount.1.in \
             (first difference at line {}); regenerate it with \
             `UPDATE_MAN=1 cargo test man_page` and commit it",
            line + 1
        );
    }
}

#[test]
fn man_page_renders_without_warnings() {
    let page = Path::new(PAGE);
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .output()
        .expect("run man (install man-db)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man failed: {stderr}");
    assert!(stderr.trim().is_empty(), "man warnings:\n{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "CREDENTIALS",
        "FSTAB",
        "SYSTEMD",
        "EXIT STATUS",
        "FILES",
    ] {
        assert!(text.contains(heading), "no {heading} section");
    }
    // Every long option of the command line is documented.
    for arg in Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                text.contains(&format!("--{long}")),
                "--{long} missing from the man page"
            );
        }
    }
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-wall", "-z"])
        .arg(page)
        .output()
        .expect("run groff");
    let stderr = String::from_utf8_lossy(&groff.stderr);
    assert!(stderr.trim().is_empty(), "groff warnings:\n{stderr}");
}
