//! The man pages in `man/`: `repowire.1` and one page per visible subcommand are generated from
//! the clap definitions (`repowire::cli::Cli`) with clap_mangen; `repowire-spool.5` is written by
//! hand. These tests fail when a committed page no longer matches what the code generates, and
//! `REPOWIRE_UPDATE_MAN=1 cargo test man` rewrites them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};

/// The environment variable that makes the test write the pages instead of failing.
const UPDATE: &str = "REPOWIRE_UPDATE_MAN";

fn man_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Every generated page, by file name. The output depends on nothing but the clap definitions
/// and the version in Cargo.toml: no date, no build information.
fn generated() -> BTreeMap<String, String> {
    // Building the command gives every subcommand its hyphenated display name
    // (`repowire-peer-ask`), which clap_mangen uses for the title, the file name and the
    // references in SUBCOMMANDS. clap's `help` subcommand gets no page.
    let mut cmd = repowire::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = BTreeMap::new();
    render(&cmd, &[], &mut pages);
    pages
}

/// Renders `cmd`'s page and those of its visible subcommands. `parents` are the display names of
/// the commands above it, for SEE ALSO.
fn render(cmd: &clap::Command, parents: &[String], pages: &mut BTreeMap<String, String>) {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let man = Man::new(cmd.clone())
        .title(name.to_uppercase())
        // No date, so the pages change only with the code. clap_mangen writes the arguments of
        // .TH unquoted, so an empty date would vanish and shift the source into its place.
        .date("\"\"")
        // The default source is the subcommand's own name ("ask 0.1.0").
        .source(format!("repowire {}", env!("CARGO_PKG_VERSION")))
        .manual("repowire Manual");
    let mut page = Vec::new();
    man.render(&mut page)
        .expect("rendering into memory cannot fail");

    let mut see_also: Vec<String> = parents.iter().map(|p| format!("{p}(1)")).collect();
    see_also.push("repowire-spool(5)".into());
    if parents.is_empty() {
        see_also.push("tmux(1)".into());
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(see_also.join(", "))]);
    // `to_roff`, not `render`: the page already starts with the preamble `render` adds.
    page.extend(roff.to_roff().into_bytes());

    let page = String::from_utf8(page).expect("clap_mangen writes UTF-8");
    pages.insert(man.get_filename(), page);

    let mut parents = parents.to_vec();
    parents.push(name);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render(sub, &parents, pages);
    }
}

/// The generated pages committed in `man/` now (`repowire*.1`), by file name.
fn committed() -> BTreeMap<String, String> {
    let mut pages = BTreeMap::new();
    let Ok(dir) = fs::read_dir(man_dir()) else {
        return pages;
    };
    for entry in dir {
        let entry = entry.expect("cannot list man/");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("repowire") && name.ends_with(".1") {
            let text = fs::read_to_string(entry.path())
                .unwrap_or_else(|e| panic!("cannot read man/{name}: {e}"));
            pages.insert(name, text);
        }
    }
    pages
}

/// Where two pages first differ, as `line N: committed ..., generated ...`.
fn first_difference(committed: &str, generated: &str) -> String {
    let same = committed
        .lines()
        .zip(generated.lines())
        .take_while(|(a, b)| a == b)
        .count();
    let line = |text: &str| {
        text.lines()
            .nth(same)
            .unwrap_or("(end of file)")
            .to_string()
    };
    format!(
        "line {}: committed {:?}, generated {:?}",
        same + 1,
        line(committed),
        line(generated)
    )
}

#[test]
fn generated_man_pages_are_up_to_date() {
    let generated = generated();
    let committed = committed();
    let mut stale = Vec::new();
    for (name, page) in &generated {
        match committed.get(name) {
            None => stale.push((name.clone(), "missing".to_string())),
            Some(old) if old != page => stale.push((name.clone(), first_difference(old, page))),
            Some(_) => {}
        }
    }
    let orphans: Vec<&String> = committed
        .keys()
        .filter(|n| !generated.contains_key(*n))
        .collect();
    if stale.is_empty() && orphans.is_empty() {
        return;
    }

    if std::env::var_os(UPDATE).is_some_and(|v| !v.is_empty() && v != "0") {
        fs::create_dir_all(man_dir()).expect("cannot create man/");
        for (name, _) in &stale {
            fs::write(man_dir().join(name), &generated[name])
                .unwrap_or_else(|e| panic!("cannot write man/{name}: {e}"));
            eprintln!("wrote man/{name}");
        }
        for name in &orphans {
            fs::remove_file(man_dir().join(name))
                .unwrap_or_else(|e| panic!("cannot remove man/{name}: {e}"));
            eprintln!("removed man/{name}");
        }
        return;
    }

    let mut msg = String::from("the man pages in man/ do not match the clap definitions:\n");
    for (name, why) in &stale {
        msg.push_str(&format!("  man/{name} is stale ({why})\n"));
    }
    for name in &orphans {
        msg.push_str(&format!(
            "  man/{name} is no longer generated (its command is gone or hidden)\n"
        ));
    }
    msg.push_str(&format!(
        "regenerate them with `{UPDATE}=1 cargo test man`, then commit man/"
    ));
    panic!("{msg}");
}

#[test]
fn every_visible_subcommand_has_a_page_and_hidden_ones_none() {
    let pages = generated();
    for name in ["repowire.1", "repowire-peer.1", "repowire-peer-ask.1"] {
        assert!(pages.contains_key(name), "no {name} in {:?}", pages.keys());
    }
    for name in [
        "repowire-deliver.1",
        "repowire-standin.1",
        "repowire-help.1",
    ] {
        assert!(!pages.contains_key(name), "{name} should not be generated");
    }
    // The generated pages only vary with the code.
    assert_eq!(pages, generated());
}

/// Every `repowire...(N)` reference in a page, generated or hand-written, names a page in man/.
#[test]
fn man_page_references_resolve() {
    let mut texts: Vec<(String, String)> = generated().into_iter().collect();
    let mut names: BTreeSet<String> = texts.iter().map(|(n, _)| n.clone()).collect();
    for entry in fs::read_dir(man_dir()).expect("cannot list man/") {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("repowire") && !name.ends_with(".1") {
            texts.push((name.clone(), fs::read_to_string(entry.path()).unwrap()));
            names.insert(name);
        }
    }
    assert!(
        names.contains("repowire-spool.5"),
        "man/repowire-spool.5 is missing"
    );
    let mut broken = Vec::new();
    for (page, text) in &texts {
        // roff escapes the hyphens of a name as `\-`.
        let text = text
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "");
        for (at, _) in text.match_indices("repowire") {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(end);
            let Some(section) = after
                .strip_prefix('(')
                .and_then(|a| a.split_once(')'))
                .map(|(s, _)| s)
            else {
                continue;
            };
            if !names.contains(&format!("{name}.{section}")) {
                broken.push(format!("{page}: {name}({section})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "references to pages that do not exist: {broken:?}"
    );
}
