//! `ainrnn` binary: parse, run, report. All work happens in the library.

mod cli;

use std::process::ExitCode;

use clap::FromArgMatches;

fn main() -> ExitCode {
    // Before any thread: it may write the environment.
    ainrnn::backend::gpu::adapter::quiet_headless_drivers();
    let matches = match cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            // A usage error under `--json` still gives a program reading stdout one object.
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            let help = matches!(e.kind(), DisplayHelp | DisplayVersion);
            if !help && std::env::args_os().any(|a| a == "--json") {
                let text = e.render().to_string();
                let first = text.split("\n\n").next().unwrap_or_default();
                let msg = first.trim().trim_start_matches("error: ");
                cli::print_json_error(&anyhow::anyhow!("{msg}"));
            }
            e.exit()
        }
    };
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // This thread is one of rayon's workers, so the CPU backend's many small parallel ops fork
    // by work stealing instead of each waking the pool from outside and sleeping on it (a CPU
    // training run spent a third of its time in the scheduler). The command still runs on the
    // main thread, whose allocations come from glibc's main arena: on another thread, blocks
    // past 64 MiB (EASE's Gram matrix, a paper-scale song table) were mapped and unmapped on
    // every use.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    let json = args.json;
    match cli::run(args, &matches) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`ainrnn ... | head`) is not an error worth reporting.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            if json {
                cli::print_json_error(&e);
            }
            match e.downcast_ref::<cli::Usage>() {
                Some(_) => ExitCode::from(2),
                None => ExitCode::FAILURE,
            }
        }
    }
}
