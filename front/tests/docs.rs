//! Every `hermes …` command the README and docs/ show exists, with the flags they name.

#[test]
fn the_docs_show_only_commands_and_flags_that_exist() {
    let problems = hermes_testkit::docs::check("hermes", std::path::Path::new(env!("CARGO_BIN_EXE_hermes")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
