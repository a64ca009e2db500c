//! `hermes`: see `hermes_cli::hermes`.

fn main() -> std::process::ExitCode {
    hermes_cli::hermes::main()
}
