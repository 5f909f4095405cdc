//! The core's architecture, checked: dependencies point one way, from the data layer up
//! to the boundary protocol, and the core depends on no host (no async runtime, no HTTP).
//!
//! A module may use modules of its own layer or of the layers below it, never one above.
//! References are read from the source (`crate::module` paths outside comments and
//! outside `#[cfg(test)]` code), so a new upward import fails here with the line that
//! made it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first, and the top-level modules of each.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "data",
        &[
            "ids",
            "hex",
            "json_text",
            "clock",
            "wallclock",
            "taxonomy",
            "attributes",
            "wire",
            "envelope",
            "carrier",
            "record",
            "metrics",
            "span_fields",
            "error",
            "helpers",
            "sha256",
            "span_stack",
        ],
    ),
    ("pipeline and sinks", &["delivery", "sink"]),
    ("live API", &["context", "observe", "run", "span"]),
    (
        "boundary",
        &["boundary", "function", "macro_support", "signature"],
    ),
];

/// Items re-exported at the crate root, and the module each comes from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("ErrorKind", "error"),
    ("Result", "error"),
    ("Function", "function"),
    ("FunctionKind", "function"),
    ("Metadata", "function"),
    ("Visibility", "function"),
];

/// Crates a host-free core must never depend on.
const HOST_CRATES: &[&str] = &[
    "tokio",
    "hyper",
    "axum",
    "reqwest",
    "ureq",
    "http",
    "tower",
    "async-std",
    "smol",
    "rusqlite",
    "opentelemetry",
    "tracing-subscriber",
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level module a source file belongs to (`src/envelope/text.rs` → `envelope`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::name` references in code (comments and `#[cfg(test)]` code left out), with
/// their line numbers.
fn references(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    // Inside a `use crate::{ ... }` group that spans lines.
    let mut in_group = false;
    for (n, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break; // the unit tests sit at the end of a file
        }
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or_default();
        let mut group = None;
        if in_group {
            group = Some(code);
        } else if let Some(rest) = code.strip_prefix("use crate::{") {
            group = Some(rest);
        }
        if let Some(group) = group {
            for part in group.split([',', '}']) {
                let name = leading_name(part.trim());
                if !name.is_empty() {
                    found.push((n + 1, name));
                }
            }
            in_group = !group.contains('}');
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name = leading_name(rest);
            if !name.is_empty() {
                found.push((n + 1, name));
            }
        }
    }
    found
}

fn leading_name(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_module_belongs_to_a_layer_and_no_layer_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut seen = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(from) = layer_of(&module) else {
            violations.push(format!(
                "{}: module `{module}` is in no layer; add it to LAYERS in {}",
                file.display(),
                file!()
            ));
            continue;
        };
        seen.insert(module.clone(), from);
        for (line, name) in references(&fs::read_to_string(file).unwrap()) {
            let target = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name.as_str(), |(_, module)| module);
            if target.is_empty() || target == module {
                continue;
            }
            match layer_of(target) {
                Some(to) if to > from => violations.push(format!(
                    "{}:{line}: `{module}` ({}) uses `{target}` ({}), a layer above it",
                    file.display(),
                    LAYERS[from].0,
                    LAYERS[to].0
                )),
                Some(_) => {}
                None if target == "__macro_support" => {}
                None => violations.push(format!(
                    "{}:{line}: `{module}` uses `crate::{name}`, which is in no layer",
                    file.display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the core's layers point one way (data <- pipeline and sinks <- live API <- boundary):\n{}",
        violations.join("\n")
    );
    assert!(
        seen.len() >= 20,
        "found only {} modules: {seen:?}",
        seen.len()
    );
}

#[test]
fn the_core_depends_on_no_host_crate() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut section = "";
    let mut offending = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[dependencies]" {
            continue;
        }
        let name = line.split(['=', ' ', '.']).next().unwrap_or_default();
        if HOST_CRATES.contains(&name) {
            offending.push(name.to_owned());
        }
    }
    assert!(
        offending.is_empty(),
        "crux-runtime must know no host; move {offending:?} to a host or exporter crate"
    );
}

#[test]
fn the_reference_reader_sees_upward_imports() {
    // The checker itself: a reference in code counts, one in a comment or in unit tests
    // does not.
    let source = "use crate::observe::Observer;\n// crate::local\nuse crate::{ids, run::Run};\nuse crate::{\n    span::Span,\n    sink,\n};\nlet x = crate::context::current(); // crate::boundary\n#[cfg(test)]\nmod tests { use crate::boundary; }\n";
    let names: Vec<String> = references(source).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["observe", "ids", "run", "span", "sink", "context"]);
}
