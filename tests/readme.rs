//! The README's reference section is the output of `mpx builtins --markdown`.

use assert_cmd::Command;

#[test]
fn readme_reference_matches_the_builtin_tables() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- builtins:start -->\n")
        .expect("start marker")
        + "<!-- builtins:start -->\n".len();
    let end = readme.find("<!-- builtins:end -->").expect("end marker");
    let out = Command::cargo_bin("mpx")
        .unwrap()
        .args(["builtins", "--markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        &readme[start..end],
        String::from_utf8(out.stdout).unwrap(),
        "regenerate with `mpx builtins --markdown`"
    );
}

#[test]
fn readme_names_the_commands_ci_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    // The README's test command is the script .ci/run hands over to, and
    // the script ends in `cargo test`.
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test.sh")).unwrap();
    assert!(readme.contains("\nscripts/test.sh\n"));
    assert!(ci.contains("\nexec scripts/test.sh\n"));
    assert!(script.contains("\ncargo test \"$@\"\n"));
}
