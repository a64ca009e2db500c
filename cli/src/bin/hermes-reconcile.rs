//! `hermes-reconcile`: see `hermes_cli::reconcile`.

fn main() -> std::process::ExitCode {
    hermes_cli::reconcile::main()
}
