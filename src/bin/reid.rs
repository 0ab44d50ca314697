//! The `reid` command: `reid <subcommand> --help` lists each program's flags.

#[global_allocator]
static ALLOCATOR: reid::cli::ProgramAllocator = reid::cli::ProgramAllocator;

fn main() -> std::process::ExitCode {
    <reid::cli::Cli as clap::Parser>::parse().execute()
}
