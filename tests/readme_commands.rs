//! Every `ainrnn` command line of README.md, REPRODUCTION.md and docs/*.md parses with the binary's own clap
//! command ([`cli::command`], as `src/main.rs` parses: `try_get_matches_from`, then
//! `Cli::from_arg_matches`). No process is started: the test includes the binary's `src/cli.rs`
//! as a module (it is not part of the library) and parses in memory.
//!
//! **Where commands are found.** Lines of fenced code blocks whose info string is empty, `sh`,
//! `bash`, `shell`, `console` or `text` (in `console` blocks only the lines that start with
//! `$ `), and inline code spans anywhere else (a span may wrap over lines; `\|`, which a table
//! needs, reads as `|`). In a fenced block a line ending in `\` continues on the next. A whole-line
//! shell comment of the form `# words: COMMAND` gives COMMAND (`# afterwards: ainrnn features
//! merge ...`).
//!
//! **What is a command.** The text is split into shell words (single and double quotes, `\`
//! escapes); a trailing comment (`#` starting a word), the operators `&&`, `||`, `;`, `&`, a
//! standalone `|` and GNU parallel's `:::` end a command, a redirection (`>`, `2>`, `<`, ...)
//! ends its arguments. In each piece, leading `VAR=value` assignments and the wrappers `time`,
//! `/usr/bin/time [-v | -f FMT]`, `timeout [-opts] DURATION` and `parallel [-x VALUE]...` are
//! dropped; the piece is a command when what follows is the program: `ainrnn`,
//! `target/release/ainrnn` (also `./`), `.dev/run.sh` (the bundled binary, `scripts/bundle.sh`) or
//! `cargo run ... --`. The words after it are the arguments.
//!
//! **Synopses and placeholders** are checked, not skipped, by these rules:
//! - `<...>` (with or without a trailing `...`), an ALL-CAPS word (`FILE`, `DIR`, `N`, `I/N`,
//!   `ALPHA,SHRINK,POWER`), a word with a shell expansion (`$VAR`, `$(...)`) or GNU parallel's
//!   `{}` is a placeholder. After an option that takes a value it becomes the first of the
//!   option's possible values, `1`, `0.5`, `0/2`, `0.5,5,0.5`, `ainrnn` (a model name) and `x`
//!   that the option's own value parser accepts (so the option must exist and take a value);
//!   elsewhere it is `x`.
//! - `[ ... ]` marks an optional part: its words are kept, so every optional flag is checked.
//!   A bracketed group that does not start with an option or a placeholder is prose
//!   (`[training flags]`) and is dropped as an elision.
//! - `a|b|c` inside a word, or `[a | b]` (spaced, inside brackets), lists alternatives: the
//!   command is parsed once per alternative (the other lists at their first), so every
//!   alternative must parse, and two alternatives never meet in one parse (`[--paper |
//!   --resume]`, which clap refuses together).
//! - `...` or `…` as a word is an elision, dropped, except after an option that takes a value,
//!   where it is that value's placeholder (`[--models …]`). A command with an elision, or one
//!   that is only the program and subcommand names (`ainrnn features merge` named in prose), may
//!   lack required arguments: clap's "missing required argument" or "missing subcommand" is
//!   accepted there (the test lists each such acceptance), and nothing else is.
//! - The program's name alone (`ainrnn`) is a name, not a command: counted, not parsed.
//!
//! Every failing command is reported at once with its file, line and clap's error. The counts
//! are printed (`cargo test --test readme_commands -- --nocapture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// The binary's command line, compiled here as a module. `crate::cli` resolves as in the binary
// (its unit tests name it so, and run here too).
#[allow(dead_code, unused_imports, unused_macros, clippy::all)]
#[path = "../src"]
mod src {
    pub mod cli;
}
use src::cli;

/// A word that stands for any value (see the module doc).
const PLACEHOLDER: &str = "\u{1}placeholder\u{1}";

/// Values tried, in order, for a placeholder after an option (after the option's own possible
/// values): numbers, a shard, three numbers (`--similarity`), a model name (`--models`), a path.
const CANDIDATES: [&str; 6] = ["1", "0.5", "0/2", "0.5,5,0.5", "ainrnn", "x"];

/// A command found in a markdown file.
#[derive(Debug, Clone)]
struct Found {
    file: String,
    line: usize,
    /// The text it was read from (one line, continuations joined).
    text: String,
    /// Its arguments after the program, as shell words (placeholders and brackets still raw).
    args: Vec<String>,
}

/// Fence info strings whose lines are shell.
fn shell_fence(info: &str) -> bool {
    matches!(info, "" | "sh" | "bash" | "shell" | "console" | "text")
}

/// The pieces of shell text that may hold a command: `(line, text)` pairs of one markdown file.
fn snippets(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut prose: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let fence = if t.starts_with("```") {
            Some("```")
        } else if t.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        let Some(fence) = fence else {
            prose.push((i + 1, lines[i]));
            i += 1;
            continue;
        };
        let info = t.trim_start_matches(fence).trim().to_string();
        let info = info.split_whitespace().next().unwrap_or("").to_string();
        let console = info == "console";
        let shell = shell_fence(&info);
        i += 1;
        let mut pending: Option<(usize, String)> = None;
        while i < lines.len() && !lines[i].trim_start().starts_with(fence) {
            if shell {
                let line = lines[i];
                let (start, mut text) = match pending.take() {
                    Some((s, t)) => (s, t + " " + line.trim()),
                    None => (i + 1, line.trim().to_string()),
                };
                if text.ends_with('\\') {
                    text.pop();
                    pending = Some((start, text));
                } else if !console || text.starts_with("$ ") {
                    out.push((start, text));
                }
            }
            i += 1;
        }
        if let Some(p) = pending {
            out.push(p);
        }
        i += 1; // the closing fence
    }
    out.extend(inline_spans(&prose));
    out
}

/// Inline code spans of the prose lines (a span may continue over lines of one paragraph).
fn inline_spans(lines: &[(usize, &str)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    // Paragraphs: runs of consecutive non-blank lines.
    let mut k = 0;
    while k < lines.len() {
        if lines[k].1.trim().is_empty() {
            k += 1;
            continue;
        }
        let mut para: Vec<(usize, &str)> = Vec::new();
        while k < lines.len()
            && !lines[k].1.trim().is_empty()
            && (para.is_empty() || lines[k].0 == para.last().unwrap().0 + 1)
        {
            para.push(lines[k]);
            k += 1;
        }
        // Characters of the paragraph with their line numbers, lines joined by a space.
        let mut chars: Vec<(usize, char)> = Vec::new();
        for (n, l) in &para {
            if !chars.is_empty() {
                chars.push((*n, '\n'));
            }
            chars.extend(l.chars().map(|c| (*n, c)));
        }
        let mut j = 0;
        while j < chars.len() {
            if chars[j].1 == '\\' {
                j += 2;
                continue;
            }
            if chars[j].1 != '`' {
                j += 1;
                continue;
            }
            let run = chars[j..].iter().take_while(|c| c.1 == '`').count();
            let start = j + run;
            // The closing run of exactly `run` backticks.
            let mut e = start;
            let mut close = None;
            while e < chars.len() {
                if chars[e].1 == '`' {
                    let r = chars[e..].iter().take_while(|c| c.1 == '`').count();
                    if r == run {
                        close = Some(e);
                        break;
                    }
                    e += r;
                } else {
                    e += 1;
                }
            }
            match close {
                Some(e) => {
                    let text: String = chars[start..e]
                        .iter()
                        .map(|c| if c.1 == '\n' { ' ' } else { c.1 })
                        .collect();
                    out.push((chars[j].0, text.trim().replace("\\|", "|")));
                    j = e + run;
                }
                None => j = start,
            }
        }
    }
    out
}

/// Inside `[ ... ]`, ` | ` between alternatives becomes `|` (one word of alternatives, not a pipe).
fn join_bracketed_alternatives(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ' ' if depth > 0
                && chars.get(i + 1) == Some(&'|')
                && chars.get(i + 2) == Some(&' ') =>
            {
                out.push('|');
                i += 3;
                continue;
            }
            _ => {}
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `<...>` placeholders (and a `...` right after them) become one [`PLACEHOLDER`] word. A `<`
/// followed by a space is a redirection and left alone.
fn mark_angle_placeholders(text: &str) -> String {
    let text = join_bracketed_alternatives(text);
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let closes = after.find('>');
        let opens_word = after.chars().next().is_some_and(|c| c.is_alphabetic());
        match closes {
            Some(j) if opens_word && !after[..j].ends_with(' ') => {
                out.push_str(&rest[..i]);
                out.push_str(PLACEHOLDER);
                rest = &after[j + 1..];
                for dots in ["...", "…"] {
                    if let Some(r) = rest.strip_prefix(dots) {
                        rest = r;
                    }
                }
            }
            _ => {
                out.push_str(&rest[..=i]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A shell word, or an operator that ends a command or its arguments.
#[derive(Debug, Clone, PartialEq)]
enum Word {
    Text(String),
    /// `&&`, `||`, `;`, `&`, a standalone `|`, `:::`: the command ends.
    End,
    /// `>`, `>>`, `2>`, `<`, `2>&1`, ...: the arguments end.
    Redirect,
}

/// Splits shell text into words: whitespace separates, quotes group, `\` escapes, `#` at the
/// start of a word begins a comment that runs to the end.
fn shell_words(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false; // the current word had quotes (so it is text, never an operator)
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let finish =
        |cur: &mut String, quoted: &mut bool, in_word: &mut bool, words: &mut Vec<Word>| {
            if *in_word {
                let w = std::mem::take(cur);
                let op = !*quoted;
                words.push(
                    if op && matches!(w.as_str(), "&&" | "||" | ";" | "&" | "|" | ":::") {
                        Word::End
                    } else if op
                        && (w.starts_with('>')
                            || w.starts_with("2>")
                            || w.starts_with("1>")
                            || w.starts_with("&>")
                            || (w.starts_with('<') && !w.starts_with(PLACEHOLDER)))
                    {
                        Word::Redirect
                    } else {
                        Word::Text(w)
                    },
                );
            }
            *quoted = false;
            *in_word = false;
        };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => finish(&mut cur, &mut quoted, &mut in_word, &mut words),
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                quoted = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    finish(&mut cur, &mut quoted, &mut in_word, &mut words);
    words
}

/// The program's arguments in one shell command piece, when the piece runs the program.
fn program_args(piece: &[String]) -> Option<Vec<String>> {
    let mut i = 0;
    let is_assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        })
    };
    while i < piece.len() && is_assignment(&piece[i]) {
        i += 1;
    }
    // Wrappers.
    loop {
        match piece.get(i).map(String::as_str) {
            Some("time") => i += 1,
            Some("/usr/bin/time") => {
                i += 1;
                while let Some(w) = piece.get(i) {
                    match w.as_str() {
                        "-f" | "-o" => i += 2,
                        w if w.starts_with('-') => i += 1,
                        _ => break,
                    }
                }
            }
            Some("timeout") => {
                i += 1;
                while piece.get(i).is_some_and(|w| w.starts_with('-')) {
                    i += 1;
                }
                i += 1; // the duration
            }
            Some("parallel") => {
                i += 1;
                while piece.get(i).is_some_and(|w| w.starts_with('-')) {
                    i += 2;
                }
            }
            _ => break,
        }
    }
    let prog = piece.get(i)?.as_str();
    match prog {
        "ainrnn" | "target/release/ainrnn" | "./target/release/ainrnn" | ".dev/run.sh" => {
            Some(piece[i + 1..].to_vec())
        }
        "cargo" if piece.get(i + 1).map(String::as_str) == Some("run") => {
            let dash = piece[i..].iter().position(|w| w == "--")? + i;
            Some(piece[dash + 1..].to_vec())
        }
        _ => None,
    }
}

/// The commands of one snippet of shell text.
fn commands_in(text: &str) -> Vec<Vec<String>> {
    let mut text = text.trim();
    // A whole-line comment that gives a command after a colon.
    if let Some(c) = text.strip_prefix('#') {
        match c.find(": ") {
            Some(i) => text = c[i + 2..].trim(),
            None => return Vec::new(),
        }
    }
    let text = text.strip_prefix("$ ").unwrap_or(text);
    let words = shell_words(&mark_angle_placeholders(text));
    let mut out = Vec::new();
    let mut piece: Vec<String> = Vec::new();
    let mut redirected = false;
    let flush = |piece: &mut Vec<String>, out: &mut Vec<Vec<String>>| {
        if let Some(args) = program_args(piece) {
            out.push(args);
        }
        piece.clear();
    };
    for w in words {
        match w {
            Word::Text(t) if !redirected => piece.push(t),
            Word::Text(_) => {}
            Word::Redirect => redirected = true,
            Word::End => {
                flush(&mut piece, &mut out);
                redirected = false;
            }
        }
    }
    flush(&mut piece, &mut out);
    out
}

fn find_commands(file: &str, markdown: &str) -> Vec<Found> {
    let mut found = Vec::new();
    for (line, text) in snippets(markdown) {
        for args in commands_in(&text) {
            found.push(Found {
                file: file.to_string(),
                line,
                text: text.clone(),
                args,
            });
        }
    }
    found
}

fn is_placeholder(w: &str) -> bool {
    w == PLACEHOLDER
        || w.contains('$')
        || w.contains("{}")
        || (w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| {
                c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | '/' | ',')
            }))
}

fn is_elision(w: &str) -> bool {
    w == "..." || w == "…"
}

/// A command's words after the rule on brackets: (words, whether something was elided). An
/// elision word stays, for [`fill`].
fn unbracket(args: &[String]) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut elided = false;
    // Depth at which a prose group started: its words are dropped until it closes.
    let mut depth = 0usize;
    let mut dropping: Option<usize> = None;
    for a in args {
        let opens = a.chars().take_while(|&c| c == '[').count();
        let closes = a.chars().rev().take_while(|&c| c == ']').count();
        let core = a.trim_start_matches('[').trim_end_matches(']');
        if opens > 0 && dropping.is_none() && !(core.starts_with('-') || is_placeholder(core)) {
            dropping = Some(depth);
            elided = true;
        }
        depth += opens;
        if dropping.is_none() && !core.is_empty() {
            elided |= is_elision(core);
            out.push(core.to_string());
        }
        depth = depth.saturating_sub(closes);
        if dropping.is_some_and(|d| depth <= d) {
            dropping = None;
        }
    }
    (out, elided)
}

/// The variants of a command: one per alternative of each `a|b` word, the others at their first.
fn variants(words: &[String]) -> Vec<Vec<String>> {
    let first: Vec<String> = words
        .iter()
        .map(|w| w.split('|').next().unwrap().to_string())
        .collect();
    let mut out = vec![first.clone()];
    for (i, w) in words.iter().enumerate() {
        for alt in w.split('|').skip(1) {
            let mut v = first.clone();
            v[i] = alt.to_string();
            out.push(v);
        }
    }
    out
}

/// Finds the argument `word` (`--long`, `--long=v`, `-s`) names in `cmd` or, for global ones,
/// the commands above it.
fn find_arg<'a>(path: &[&'a clap::Command], word: &str) -> Option<&'a clap::Arg> {
    let by = |c: &'a clap::Command| -> Option<&'a clap::Arg> {
        if let Some(long) = word.strip_prefix("--") {
            let long = long.split('=').next().unwrap();
            c.get_arguments().find(|a| {
                a.get_long() == Some(long)
                    || a.get_all_aliases().unwrap_or_default().contains(&long)
            })
        } else {
            let s = word.strip_prefix('-')?.chars().next()?;
            c.get_arguments().find(|a| a.get_short() == Some(s))
        }
    };
    path.iter().rev().find_map(|c| by(c))
}

/// The first candidate that `arg`'s value parser accepts.
fn value_for(arg: &clap::Arg) -> String {
    let probe_arg = clap::Arg::new("v")
        .long("v")
        .action(clap::ArgAction::Set)
        .allow_hyphen_values(true)
        .value_parser(arg.get_value_parser().clone());
    let probe_arg = match arg.get_value_delimiter() {
        Some(d) => probe_arg.value_delimiter(d),
        None => probe_arg,
    };
    let probe = clap::Command::new("probe").arg(probe_arg);
    let own: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|p| p.get_name().to_string())
        .collect();
    let found = own
        .iter()
        .map(String::as_str)
        .chain(CANDIDATES)
        .find(|c| {
            probe
                .clone()
                .try_get_matches_from(["probe", "--v", c])
                .is_ok()
        })
        .unwrap_or("x")
        .to_string();
    found
}

/// Replaces the placeholders of one variant by values its options accept, and drops elisions
/// (an elision after an option that takes a value is that value's placeholder).
fn fill(root: &clap::Command, words: &[String]) -> Vec<String> {
    let mut path: Vec<&clap::Command> = vec![root];
    let mut out = Vec::new();
    let mut value_of: Option<&clap::Arg> = None;
    for w in words {
        if let Some(arg) = value_of.take() {
            // An elision where a value goes stands for the value (`--models …`).
            out.push(if is_placeholder(w) || is_elision(w) {
                value_for(arg)
            } else {
                w.clone()
            });
            continue;
        }
        if is_elision(w) {
            continue;
        }
        if w.starts_with('-') && w.len() > 1 {
            if let Some(arg) = find_arg(&path, w) {
                let short_with_value = !w.starts_with("--") && w.chars().count() > 2;
                if arg.get_action().takes_values() && !w.contains('=') && !short_with_value {
                    value_of = Some(arg);
                }
            }
            out.push(w.clone());
            continue;
        }
        let cur = *path.last().unwrap();
        if let Some(sub) = cur.find_subcommand(w) {
            path.push(sub);
            out.push(w.clone());
        } else if is_placeholder(w) {
            out.push("x".to_string());
        } else {
            out.push(w.clone());
        }
    }
    out
}

/// Whether the words name only subcommands (the program and subcommand names in prose).
fn only_subcommand_names(root: &clap::Command, words: &[String]) -> bool {
    let mut cur = root;
    for w in words {
        match cur.find_subcommand(w) {
            Some(s) => cur = s,
            None => return false,
        }
    }
    true
}

/// The result of checking every command of some files.
#[derive(Default, Debug)]
struct Report {
    commands: usize,
    variants: usize,
    with_placeholders: usize,
    with_elisions: usize,
    names_only: usize,
    program_name_only: usize,
    per_file: BTreeMap<String, usize>,
    /// Commands accepted although clap found required arguments missing (elided or names only).
    tolerated: Vec<String>,
    failures: Vec<String>,
}

fn check(found: &[Found]) -> Report {
    let mut root = cli::command().color(clap::ColorChoice::Never);
    root.build();
    let mut r = Report::default();
    for f in found {
        if f.args.is_empty() {
            r.program_name_only += 1;
            continue;
        }
        r.commands += 1;
        *r.per_file.entry(f.file.clone()).or_default() += 1;
        let (words, elided) = unbracket(&f.args);
        let names_only = only_subcommand_names(&root, &words);
        if words.iter().any(|w| w.split('|').any(is_placeholder)) {
            r.with_placeholders += 1;
        }
        if elided {
            r.with_elisions += 1;
        }
        if names_only {
            r.names_only += 1;
        }
        let mut errors = Vec::new();
        for v in variants(&words) {
            r.variants += 1;
            let args = fill(&root, &v);
            let argv = std::iter::once("ainrnn".to_string()).chain(args.iter().cloned());
            let err = match root.clone().try_get_matches_from(argv) {
                Ok(m) => match <cli::Cli as clap::FromArgMatches>::from_arg_matches(&m) {
                    Ok(_) => continue,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            use clap::error::ErrorKind as K;
            match err.kind() {
                K::DisplayHelp | K::DisplayVersion => continue,
                K::MissingRequiredArgument
                | K::MissingSubcommand
                | K::DisplayHelpOnMissingArgumentOrSubcommand
                    if elided || names_only =>
                {
                    let t = format!("{}:{} `ainrnn {}`", f.file, f.line, args.join(" "));
                    if !r.tolerated.contains(&t) {
                        r.tolerated.push(t);
                    }
                    continue;
                }
                _ => {}
            }
            let text = err.render().to_string();
            let msg = text
                .split("\n\n")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            errors.push(format!("parsed as `ainrnn {}`: {msg}", args.join(" ")));
        }
        if !errors.is_empty() {
            errors.dedup();
            r.failures.push(format!(
                "{}:{}: `{}`\n    {}",
                f.file,
                f.line,
                f.text,
                errors.join("\n    ")
            ));
        }
    }
    r
}

/// README.md, REPRODUCTION.md and docs/*.md, as (name relative to the project, text).
fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = vec![root.join("README.md"), root.join("REPRODUCTION.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_documented_command_parses() {
    let mut found = Vec::new();
    for (name, text) in documents() {
        found.extend(find_commands(&name, &text));
    }
    let r = check(&found);
    let summary = format!(
        "{} commands checked ({} parses, one per alternative): {}; {} with placeholders, {} with \
         elisions, {} naming subcommands only; {} spans that are the program's name alone (not \
         commands)",
        r.commands,
        r.variants,
        r.per_file
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.with_placeholders,
        r.with_elisions,
        r.names_only,
        r.program_name_only,
    );
    println!("readme_commands: {summary}");
    println!(
        "accepted with required arguments missing (elided, or only subcommand names): {}",
        r.tolerated.join(", ")
    );
    assert!(
        r.failures.is_empty(),
        "{} of the documented commands do not parse:\n\n{}\n\n({summary})",
        r.failures.len(),
        r.failures.join("\n\n")
    );
    // The extractor itself must keep finding the documents' commands.
    assert!(
        r.commands >= 100 && r.per_file.contains_key("README.md"),
        "too few commands found; the extractor is broken: {summary}"
    );
}

// The rules, on small inputs.

fn args_of(markdown: &str) -> Vec<String> {
    find_commands("t.md", markdown)
        .into_iter()
        .map(|f| f.args.join(" "))
        .collect()
}

#[test]
fn extraction_rules() {
    let md = "Run `time ainrnn --backend cpu demo` or `ainrnn stats a.h5 | less`;\n\
              a span over lines: `AINRNN_X=1 WGPU_BACKEND=vulkan ainrnn bench\n\
              ops --quick`, not `compare --models ainrnn --folds 5`, nor `ainrnn::cli`.\n\
              \n\
              ```sh\n\
              $ ainrnn features a --output 'x y.h5' \\\n    --seconds 30 # a comment\n\
              cd x && target/release/ainrnn info > log.txt\n\
              parallel -j 8 ainrnn features d --shard {}/8 ::: $(seq 0 7)\n\
              # afterwards: ainrnn features merge -o f.h5 s-*.h5\n\
              ```\n\
              ```rust\n\
              ainrnn demo\n\
              ```\n";
    assert_eq!(
        args_of(md),
        [
            "features a --output x y.h5 --seconds 30",
            "info",
            "features d --shard {}/8",
            "features merge -o f.h5 s-*.h5",
            "--backend cpu demo",
            "stats a.h5",
            "bench ops --quick",
        ]
    );
}

#[test]
fn placeholder_rules() {
    let found = find_commands(
        "t.md",
        "`ainrnn eval --data D.h5 --checkpoint <file> [--fold F [--other-fold]] [--k 10] \
         [training flags] [--backend auto|cpu|gpu]`",
    );
    let (words, elided) = unbracket(&found[0].args);
    assert!(elided, "[training flags] is prose");
    assert_eq!(
        words.join(" "),
        format!("eval --data D.h5 --checkpoint {PLACEHOLDER} --fold F --other-fold --k 10 --backend auto|cpu|gpu")
    );
    assert_eq!(variants(&words).len(), 3);
    let r = check(&found);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!((r.commands, r.variants, r.with_placeholders), (1, 3, 1));
}

#[test]
fn a_wrong_flag_or_value_fails_with_file_line_and_claps_error() {
    let md = "x\n`ainrnn train --data d.h5 --no-such-flag`\n\n```sh\nainrnn train --data d.h5 \
              --backend auto|tpu\nainrnn prepare\nainrnn prepare ... -o x.h5\nainrnn prepare -o x.h5\n```\n";
    let r = check(&find_commands("t.md", md));
    let all = r.failures.join("\n");
    assert_eq!(r.failures.len(), 3, "{all}");
    assert!(all.contains("t.md:2:") && all.contains("unexpected argument '--no-such-flag'"));
    assert!(all.contains("t.md:5:") && all.contains("invalid value 'tpu'"));
    // A bare subcommand name and an elided command may lack required arguments; a whole
    // command may not.
    assert!(!all.contains("t.md:6:") && !all.contains("t.md:7:"));
    assert!(all.contains("t.md:8:") && all.contains("required"), "{all}");
}
