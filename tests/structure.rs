//! The crate's shape, as `src/lib.rs` states it: its top-level modules form layers that only
//! point down (a module uses modules of its own layer or below), with no circle among them,
//! and no file of `src/` or `tests/` is over 800 lines. Read from `src/` as text: `use crate::X` and
//! `crate::X::...` in code that is not a test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers of `src/lib.rs`, lowest first. A new module goes into one of them.
const LAYERS: [&[&str]; 4] = [
    &[
        "agents", "describe", "error", "host", "process", "spool", "time", "tmux", "wait",
    ],
    &["config", "history", "message", "peer"],
    &[
        "ask", "deliver", "fanout", "fork", "gc", "reach", "remote", "session",
    ],
    &[
        "cli", "commands", "demo", "hook", "mcp", "setup", "standin", "status", "team", "top",
    ],
];
const MAX_LINES: usize = 800;

/// Every `.rs` file under `dir`, as (path, text).
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/agents/edit.rs` is `agents`).
fn module_of(src: &Path, file: &str) -> String {
    let rel = Path::new(file).strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The top-level modules `code` names as `crate::X`, tests and comments left out.
fn uses(code: &str) -> BTreeSet<String> {
    let code = code.split("#[cfg(test)]").next().unwrap();
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, d::{e, f}}`: the first segment of each path.
            let (mut depth, mut start) = (0, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.extend(first_segment(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_segment(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// A circle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// The import graph of the crate's top-level modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue; // the root and the binary sit above every layer
        }
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(uses(code).into_iter().filter(|d| *d != module));
    }
    graph
}

#[test]
fn modules_form_layers_that_only_point_down() {
    let graph = graph();
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        let Some(mine) = layer(module) else {
            wrong.push(format!(
                "module `{module}` is in no layer: add it to LAYERS here and to src/lib.rs"
            ));
            continue;
        };
        for dep in deps {
            match layer(dep) {
                Some(theirs) if theirs <= mine => {}
                Some(_) => wrong.push(format!(
                    "`{module}` (layer {}) uses `{dep}` of a higher layer",
                    mine + 1
                )),
                None => wrong.push(format!("`{module}` uses `{dep}`, which is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules import each other in a circle: {}",
            cycle.join(" -> ")
        );
    }
}

/// Of the code and of the tests alike.
#[test]
fn no_source_file_is_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join("tests"), &mut files);
    assert!(files.len() > 20, "too few files read: {}", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|(_, code)| code.lines().count() > MAX_LINES)
        .map(|(file, code)| format!("{file}: {} lines", code.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// The checks themselves: a cycle and grouped imports are found.
#[test]
fn the_import_reader_and_cycle_finder_work() {
    let found = uses(
        "use crate::{a, b::c, d::{e, f}};\nuse crate::g;\nfn x() { crate::h::y(); }\n\
         // crate::comment\n#[cfg(test)]\nmod tests { use crate::t; }",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["a", "b", "d", "g", "h"]
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&graph), None);
}

/// Code of `src/` that is not a test, comments left out.
fn code_of(text: &str) -> String {
    text.split("#[cfg(test)]")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An agent is one file, `src/agents/NAME.rs`, implementing `Kind`, and listed once in
/// `Agent::ALL`; nothing outside `src/agents/` names one (by its module or its name), so the
/// core can only ask an agent what it can do.
#[test]
fn each_agent_is_one_file_and_nothing_else_names_one() {
    use repowire::agents::Agent;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let names: Vec<&str> = Agent::ALL.iter().map(|a| a.name()).collect();
    assert!(!names.is_empty(), "Agent::ALL lists no agent");
    let mut kinds = 0;
    for name in &names {
        let file = src.join("agents").join(format!("{name}.rs"));
        let code = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("agent {name} has no file {}: {e}", file.display()));
        assert!(
            code.contains("impl Kind for"),
            "{} does not implement Kind",
            file.display()
        );
    }
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for (file, text) in &files {
        let code = code_of(text);
        if Path::new(file).starts_with(src.join("agents")) {
            kinds += code.matches("impl Kind for").count();
            continue;
        }
        for name in &names {
            for named in [format!("\"{name}\""), format!("agents::{name}")] {
                if code.contains(&named) {
                    wrong.push(format!("{file} names the agent {name} ({named})"));
                }
            }
        }
    }
    assert_eq!(
        kinds,
        names.len(),
        "every implementation of Kind is listed in Agent::ALL, once"
    );
    assert!(
        wrong.is_empty(),
        "ask the agent instead:\n{}",
        wrong.join("\n")
    );
}
