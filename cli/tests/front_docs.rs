//! Every `hermes …` command the README and docs/ show exists, with the flags they name.

#[test]
fn the_docs_show_only_commands_and_flags_that_exist() {
    // hermes-agent's own commands (`hermes chat`, `hermes config …`) are its CLI's to answer.
    let upstream = |path: &[String]| {
        hermes_cli::upstream::route(&path.iter().map(std::ffi::OsString::from).collect::<Vec<_>>()) == hermes_cli::upstream::Route::Upstream
    };
    let problems = hermes_testkit::docs::check_except("hermes", std::path::Path::new(env!("CARGO_BIN_EXE_hermes")), upstream);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
