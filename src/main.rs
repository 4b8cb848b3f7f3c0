/// mimalloc: large directories mean millions of small strings, where glibc's allocator (and its
/// per-thread arenas) costs more than the planning itself.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use idsync::{cli::Cli, commands, exit, output::Printer, Error, ExitStatus};

fn main() -> ExitCode {
    exit::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitStatus::of_usage(&e).into(),
    };
    exit::catching_panics(|| {
        let printer = Printer::new(cli.color, cli.quiet, cli.verbose);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        match runtime.block_on(commands::run(cli, printer)) {
            Ok(status) => status,
            // A closed pipe (`idsync plan | head`) is not an error.
            Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitStatus::Success
            }
            Err(e) => {
                printer.error(&e);
                ExitStatus::Error
            }
        }
    })
    .into()
}
