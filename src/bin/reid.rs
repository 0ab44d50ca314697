//! The `reid` command: `reid <subcommand> --help` lists each program's flags.

fn main() -> std::process::ExitCode {
    <reid::cli::Cli as clap::Parser>::parse().execute()
}
